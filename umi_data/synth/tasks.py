"""Tasks of the synthetic world: an instruction, the tools offered, and what a correct run ends with.

Each task kind draws its inputs with a seeded `random.Random`, phrases the instruction one of
several ways, and computes its expected answer facts straight from the world's tables (not by
calling the tools), so tests can check the scripted solver, and later a live agent, against an
independent ground truth. Infeasible inputs (an unknown city, an unsupported currency, unit or
holiday calendar) make tasks whose expected outcome is a give-up.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date as Date
from typing import Any, Callable, Iterator, Literal, Mapping

from umi_data.synth import data
from umi_data.synth.tools import TOOL_DESCRIPTIONS, fx_is_rate_limited, skycast_is_rate_limited

Outcome = Literal["answer", "give_up"]
_FIRST_DAY = Date(data.YEAR, 1, 1).toordinal()


@dataclass(frozen=True)
class Task:
    """One task. `slots` are the inputs the solver works from (city, date, amount...); `facts`
    are short strings a correct final answer contains (empty for a give-up task); `seed` makes
    the solver's wording of this task reproducible on its own."""

    id: str
    kind: str
    instruction: str
    tools: tuple[str, ...]  # the RapidAPI-style tools offered (groups of APIs)
    facts: tuple[str, ...]
    outcome: Outcome
    slots: dict[str, Any] = field(default_factory=dict)
    seed: str = ""


@dataclass(frozen=True)
class Draft:
    """What a task kind produces before the generator gives it an id and distractor tools."""

    instruction: str
    tools: tuple[str, ...]
    facts: tuple[str, ...]
    slots: dict[str, Any]

    @property
    def outcome(self) -> Outcome:
        return "answer" if self.facts else "give_up"


# --- shared draws -------------------------------------------------------------------------

def _day(rng: random.Random, last: str | None = None) -> str:
    span = (Date.fromisoformat(last).toordinal() - _FIRST_DAY + 1) if last else 365
    return Date.fromordinal(_FIRST_DAY + rng.randrange(span)).isoformat()


_MONTHS = ("January", "February", "March", "April", "May", "June",
           "July", "August", "September", "October", "November", "December")


def _say_day(rng: random.Random, iso: str) -> str:
    """The date as a user would write it: ISO, or in words (English month names from a table,
    not strftime's %B, which follows the process locale)."""
    day = Date.fromisoformat(iso)
    month = _MONTHS[day.month - 1]
    return rng.choice((iso, f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}", f"{month} {day.day}"))


def _known_city(rng: random.Random, exclude: tuple[str, ...] = ()) -> data.City:
    return rng.choice([c for c in data.CITIES if c.name not in exclude])


def _amount(rng: random.Random) -> float | int:
    return rng.choice((rng.randrange(5, 2000), rng.randrange(5, 500), round(rng.uniform(1, 1000), 2)))


def _money(value: float, code: str) -> str:
    return f"{value:.2f} {code}"


def weather_facts(city: data.City, day: str, fahrenheit: bool = False) -> tuple[str, ...]:
    w = data.day_weather(city, day)
    temperature = f"{round(w.temperature_c * 9 / 5 + 32, 1)}°F" if fahrenheit else f"{w.temperature_c}°C"
    return temperature, w.condition


# --- task kinds ---------------------------------------------------------------------------

def weather_task(rng: random.Random) -> Draft:
    unknown = rng.random() < 0.15
    city = rng.choice(data.UNKNOWN_CITIES) if unknown else _known_city(rng).name
    day, fahrenheit = _day(rng), rng.random() < 0.2
    phrasing = rng.choice((
        "What will the weather be like in {city} on {day}?",
        "I'm planning a walk in {city} on {day}. What's the forecast?",
        "Can you check the weather forecast for {city} for {day}?",
        "How warm will it be in {city} on {day}, and will it rain?",
    ))
    instruction = phrasing.format(city=city, day=_say_day(rng, day))
    if fahrenheit:
        instruction += " Please give the temperature in Fahrenheit."
    facts = () if unknown else weather_facts(data.find_city(city), day, fahrenheit)
    return Draft(instruction, ("skycast", "weatherhub"), facts, {"city": city, "date": day, "fahrenheit": fahrenheit})


def currency_task(rng: random.Random) -> Draft:
    codes = list(data.USD_RATES)
    base, quote = rng.sample(codes, 2)
    if rng.random() < 0.15:
        if rng.random() < 0.5:
            base = rng.choice(data.UNSUPPORTED_CURRENCIES)
        else:
            quote = rng.choice(data.UNSUPPORTED_CURRENCIES)
    amount = _amount(rng)
    by_name = rng.random() < 0.35 and base in data.CURRENCY_NAMES and quote in data.CURRENCY_NAMES
    said_base, said_quote = (data.CURRENCY_NAMES[base], data.CURRENCY_NAMES[quote]) if by_name else (base, quote)
    phrasing = rng.choice((
        "How much is {amount} {base} in {quote}?",
        "Convert {amount} {base} to {quote}, please.",
        "I need to pay {amount} {base}. What is that in {quote}?",
        "What do I get for {amount} {base} if I exchange it into {quote}?",
    ))
    instruction = phrasing.format(amount=amount, base=said_base, quote=said_quote)
    feasible = base in data.USD_RATES and quote in data.USD_RATES
    facts = (_money(data.convert_amount(amount, base, quote), quote),) if feasible else ()
    slots = {"amount": amount, "base": base, "quote": quote, "by_name": by_name}
    return Draft(instruction, ("fx_rates", "exchangerate_backup"), facts, slots)


_CONVERSIONS = (("mile", "kilometer"), ("kilometer", "mile"), ("foot", "meter"), ("meter", "foot"), ("inch", "centimeter"),
                ("pound", "kilogram"), ("kilogram", "pound"), ("ounce", "gram"), ("gallon", "liter"), ("liter", "gallon"),
                ("celsius", "fahrenheit"), ("fahrenheit", "celsius"), ("kelvin", "celsius"))


def units_task(rng: random.Random) -> Draft:
    source, target = rng.choice(_CONVERSIONS)
    if rng.random() < 0.12:
        source = rng.choice(data.UNSUPPORTED_UNITS)
    value = rng.choice((rng.randrange(1, 300), round(rng.uniform(0.5, 120), 1)))
    if source == "kelvin":
        value = round(value + 200, 1)
    phrasing = rng.choice((
        "Convert {value} {source} to {target}.",
        "How many {target}s is {value} {source}?",
        "What is {value} {source} in {target}s?",
        "My recipe says {value} {source}; what is that in {target}?",
    ))
    instruction = phrasing.format(value=value, source=source, target=target)
    facts = ()
    if source in data.UNITS:
        unit = data.UNITS[target]
        facts = (f"{data.convert_unit_value(value, data.UNITS[source], unit):.2f} {unit.symbol}",)
    return Draft(instruction, ("unitconverter",), facts, {"value": value, "from_unit": source, "to_unit": target})


def product_task(rng: random.Random) -> Draft:
    category = rng.choice(data.PRODUCT_CATEGORIES)
    prices = sorted(p.price_usd for p in data.PRODUCTS if p.category == category)
    max_price = float(int(rng.uniform(prices[0] + 1, prices[-1] * 1.2)))
    by_rating = rng.random() < 0.4
    affordable = [p for p in data.PRODUCTS if p.category == category and p.price_usd <= max_price]
    best = max(affordable, key=lambda p: p.rating) if by_rating else min(affordable, key=lambda p: p.price_usd)
    phrasing = rng.choice((
        "Find the {which} {category} under ${max_price:.0f} in the store and tell me its price and whether it is in stock.",
        "I want to buy the {which} {category} that costs at most ${max_price:.0f}. "
        "Which one is it, how much is it, and is it available?",
        "Which {category} is the {which} one below ${max_price:.0f}? Include the price and stock.",
    ))
    which = "best-rated" if by_rating else "cheapest"
    stock = f"{best.stock} in stock" if best.stock else "out of stock"
    facts = (best.name, f"${best.price_usd:.2f}", stock)
    slots = {"category": category, "max_price": max_price, "sort": "rating" if by_rating else "price_asc"}
    instruction = phrasing.format(which=which, category=category, max_price=max_price)
    return Draft(instruction, ("shopcatalog", "pricewatch"), facts, slots)


def next_holiday_task(rng: random.Random) -> Draft:
    city = _known_city(rng)
    calendar = data.HOLIDAYS.get(city.country_code)
    day = _day(rng, last=calendar[-1][0] if calendar else None)
    phrasing = rng.choice((
        "I live in {city}. When is the next public holiday after {day}?",
        "What is the first public holiday in {city} on or after {day}?",
        "I'm visiting {city} from {day}. Which public holiday comes next there, and when?",
    ))
    facts = ()
    if calendar:
        holiday_date, name = next((d, n) for d, n in calendar if d >= day)
        facts = (name, holiday_date)
    instruction = phrasing.format(city=city.name, day=_say_day(rng, day))
    return Draft(instruction, ("geodb", "holidayapi"), facts, {"city": city.name, "date": day})


def holiday_count_task(rng: random.Random) -> Draft:
    country = rng.choice(list(data.COUNTRIES.values()))
    calendar = data.HOLIDAYS.get(country.code)
    phrasing = rng.choice((
        "How many national public holidays does {country} have in {year}, and which is the last one of the year?",
        "List the {year} public holidays of {country}: how many are there and what is the final one?",
    ))
    facts = (f"{len(calendar)} public holidays", calendar[-1][1]) if calendar else ()
    slots = {"country_code": country.code, "country": country.name}
    return Draft(phrasing.format(country=country.name, year=data.YEAR), ("holidayapi",), facts, slots)


def time_task(rng: random.Random) -> Draft:
    source = _known_city(rng)
    target = _known_city(rng, exclude=(source.name,))
    names = [source.name, target.name]
    if rng.random() < 0.12:
        names[rng.randrange(2)] = rng.choice(data.UNKNOWN_CITIES)
    time_hhmm = f"{rng.randrange(24):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    phrasing = rng.choice((
        "When it is {time} in {a}, what time is it in {b}?",
        "I have a call at {time} {a} time. What time is that in {b}?",
        "If I call my friend in {b} at {time} my time in {a}, what is the local time there?",
    ))
    facts = ()
    if names == [source.name, target.name]:
        facts = (data.local_time(time_hhmm, source.utc_offset_minutes, target.utc_offset_minutes)[0],)
    slots = {"time": time_hhmm, "from_city": names[0], "to_city": names[1], "two_lookups": rng.random() < 0.4}
    return Draft(phrasing.format(time=time_hhmm, a=names[0], b=names[1]), ("worldclock",), facts, slots)


def trip_task(rng: random.Random) -> Draft:
    """Three or four calls: where the destination is, its weather, and the traveller's money in
    its currency. Inputs needing two fallbacks (five calls) are redrawn to stay within four."""
    home = _known_city(rng)
    home_currency = data.COUNTRIES[home.country_code].currency
    dest = rng.choice([c for c in data.CITIES if data.COUNTRIES[c.country_code].currency != home_currency])
    currency = data.COUNTRIES[dest.country_code].currency
    day, amount = _day(rng), _amount(rng)
    while skycast_is_rate_limited(dest.name, day) and fx_is_rate_limited(amount, home_currency, currency):
        day, amount = _day(rng), _amount(rng)
    unknown = rng.random() < 0.1
    dest_name = rng.choice(data.UNKNOWN_CITIES) if unknown else dest.name
    phrasing = rng.choice((
        "I'm travelling from {home} to {dest} on {day} with {amount} {money}. "
        "What weather should I expect there, and how much is my money worth in the local currency?",
        "Trip planning: I fly to {dest} on {day}. "
        "Check the forecast for that day and convert my {amount} {money} into the currency used in {dest}.",
    ))
    instruction = phrasing.format(home=home.name, dest=dest_name, day=_say_day(rng, day), amount=amount, money=home_currency)
    money = _money(data.convert_amount(amount, home_currency, currency), currency)
    facts = () if unknown else (*weather_facts(dest, day), money)
    slots = {"city": dest_name, "date": day, "amount": amount, "base": home_currency}
    return Draft(instruction, ("geodb", "skycast", "weatherhub", "fx_rates", "exchangerate_backup"), facts, slots)


def city_currency_task(rng: random.Random) -> Draft:
    city = rng.choice([c for c in data.CITIES if data.COUNTRIES[c.country_code].currency != "USD"])
    currency, amount = data.COUNTRIES[city.country_code].currency, _amount(rng)
    phrasing = rng.choice((
        "Which currency do they use in {city}, and how much is {amount} USD in it?",
        "I'm going to {city}. What's the local currency and what would {amount} US dollars be worth there?",
    ))
    facts = (currency, _money(data.convert_amount(amount, "USD", currency), currency))
    slots = {"city": city.name, "amount": amount, "base": "USD"}
    return Draft(phrasing.format(city=city.name, amount=amount), ("geodb", "fx_rates", "exchangerate_backup"), facts, slots)


def country_facts_task(rng: random.Random) -> Draft:
    city = _known_city(rng)
    country = data.COUNTRIES[city.country_code]
    phrasing = rng.choice((
        "What is the capital of the country {city} is in, and what is its international calling code?",
        "My colleague is based in {city}. What's the capital of that country and which calling code do I dial?",
    ))
    return Draft(phrasing.format(city=city.name), ("geodb",), (country.capital, country.calling_code), {"city": city.name})


#: Task kinds and their relative frequency.
KINDS: dict[str, tuple[Callable[[random.Random], Draft], int]] = {
    "weather": (weather_task, 3), "currency": (currency_task, 3), "units": (units_task, 2), "product": (product_task, 2),
    "next_holiday": (next_holiday_task, 2), "holiday_count": (holiday_count_task, 1), "time": (time_task, 2),
    "trip": (trip_task, 2), "city_currency": (city_currency_task, 1), "country_facts": (country_facts_task, 1),
}
_KIND_NAMES = tuple(KINDS)
_KIND_WEIGHTS = tuple(weight for _, weight in KINDS.values())


def task_rng(seed: int, index: int) -> random.Random:
    """The generator of task `index`: one per task (string seeds hash with SHA-512, the same in
    every process), so task i is the same whatever n is and tasks can be made in any order."""
    return random.Random(f"umi-synth/{seed}/{index}")


def make_task(seed: int, index: int, id_width: int = 6) -> Task:
    rng = task_rng(seed, index)
    kind = rng.choices(_KIND_NAMES, _KIND_WEIGHTS)[0]
    draft = KINDS[kind][0](rng)
    spare = [g for g in TOOL_DESCRIPTIONS if g not in draft.tools]
    distractors = tuple(rng.sample(spare, rng.choice((0, 1, 1, 2))))
    task_id = f"{index:0{id_width}d}"
    return Task(task_id, kind, draft.instruction, draft.tools + distractors, draft.facts, draft.outcome, draft.slots,
                seed=f"umi-synth/{seed}/{index}/solve")


def generate_tasks(n: int, seed: int) -> Iterator[Task]:
    """Tasks 0..n-1 of `seed`, lazily."""
    width = max(6, len(str(max(n - 1, 0))))
    return (make_task(seed, index, width) for index in range(n))


# --- checking answers ---------------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")


def _drop_trailing_zeros(match: re.Match[str]) -> str:
    decimals = match.group(2).rstrip("0")
    return f"{match.group(1)}.{decimals}" if decimals else match.group(1)


def normalise_answer(text: str) -> str:
    """Light normalisation for fact matching: NFKC, case-folded, typographic apostrophes, no
    thousands separators, no trailing decimal zeros ("92.50" = "92.5"), "18 °C" = "18°C"."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    text = _DECIMAL.sub(_drop_trailing_zeros, _THOUSANDS.sub("", text))
    return " ".join(re.sub(r"\s*°\s*", "°", text).split())


def _facts_of(task: Task | Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    if isinstance(task, Task):
        return task.facts, task.outcome
    return tuple(task["expected_facts"]), task["expected_outcome"]


def answer_is_correct(task: Task | Mapping[str, Any], answer: str) -> bool:
    """True when the answer contains every expected fact (after `normalise_answer`), each as a
    whole token ("18°C" is not found in "-18°C" or "118°C"). `task` is a `Task` or a line of
    tasks.jsonl. A give-up task has no correct answer: judge those runs by their outcome."""
    facts, outcome = _facts_of(task)
    if outcome != "answer" or not facts:
        return False
    text = normalise_answer(answer)
    return all(re.search(rf"(?<![\w.\-]){re.escape(normalise_answer(f))}(?!\w)", text) for f in facts)
