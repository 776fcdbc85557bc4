"""The scripted solver: runs a task against the real tools and records what it did.

It plays the part of a competent agent: it calls the primary API, reads the observation (it only
knows what the observations say, never the world's tables), falls back to a backup API after a
rate limit or an outage, gives up when the needed information cannot be had, and otherwise
answers with every requested fact. Thoughts and answers are drawn from several phrasings with
the task's own seed, so the same task always gets the same words.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from umi_data.synth.tasks import Task
from umi_data.synth.tools import TOOLS_BY_NAME
from umi_data.synth.toolkit import ToolResult


@dataclass(frozen=True)
class Step:
    """One tool call: the thought before it, the call and the tool's real result."""

    thought: str
    name: str
    arguments: dict[str, Any]
    result: ToolResult


@dataclass(frozen=True)
class Episode:
    """A solved task: its calls, then a Finish with an answer (or `answer` None: a give-up)."""

    task: Task
    steps: tuple[Step, ...]
    finish_thought: str
    answer: str | None

    @property
    def outcome(self) -> str:
        return "give_up" if self.answer is None else "answer"


@dataclass
class Transcript:
    """The solver's scratchpad: executes calls, keeps the steps, ends with an answer or a give-up."""

    task: Task
    rng: random.Random
    steps: list[Step] = field(default_factory=list)
    finish: tuple[str, str | None] | None = None

    def say(self, *options: str, **slots: Any) -> str:
        return self.rng.choice(options).format(**slots)

    def call(self, thought: str, name: str, arguments: dict[str, Any]) -> tuple[ToolResult, Any]:
        """Run a tool, record the step, and return its result with the parsed response (None on error)."""
        result = TOOLS_BY_NAME[name].call(arguments)
        self.steps.append(Step(thought, name, arguments, result))
        return result, (json.loads(result.response) if result.ok else None)

    def answer(self, text: str) -> None:
        self.finish = (self.say(*_READY), text)

    def give_up(self, reason: str) -> None:
        self.finish = (f"{reason} {self.say(*_GIVING_UP)}", None)


_READY = (
    "I have everything I need, so I'll give the final answer.",
    "Now I can answer the user.",
    "That covers the whole request; time to write the answer.",
    "I can now summarise the results for the user.",
)
_GIVING_UP = (
    "I cannot complete the task, so I will give up and restart.",
    "There is no way to finish this task with the available tools; I give up.",
    "I will give up on this task.",
)


# --- reusable lookups ---------------------------------------------------------------------

def forecast(t: Transcript, city: str, day: str, fahrenheit: bool = False, first: bool = True) -> dict[str, Any] | None:
    """{"temperature": "18°C", "condition": ...} from skycast, or weatherhub after a failure
    (weatherhub first when Fahrenheit is wanted, since skycast only speaks Celsius)."""
    providers = ["weatherhub", "skycast"] if fahrenheit else ["skycast", "weatherhub"]
    options = _FIRST_FORECAST if first else _NEXT_FORECAST
    thought = t.say(*options, city=city, day=day, p=providers[0])
    for provider in providers:
        if provider == "skycast":
            result, value = t.call(thought, "daily_forecast_for_skycast", {"city": city, "date": day})
            if value is not None:
                return {"temperature": f"{value['temperature_c']}°C", "condition": value["condition"]}
        else:
            arguments = {"city": city, "date": day}
            if fahrenheit or t.rng.random() < 0.5:
                arguments["units"] = "fahrenheit" if fahrenheit else "celsius"
            result, value = t.call(thought, "weather_by_city_for_weatherhub", arguments)
            if value is not None:
                unit = value["forecast"]["unit"]
                return {"temperature": f"{value['forecast']['temperature']}°{unit}", "condition": value["forecast"]["summary"]}
        thought = _after_failure(t, result, provider, "weather")
    return None


_FIRST_FORECAST = (
    "I need the forecast for {city} on {day}; I'll ask {p}.",
    "Let me look up the weather in {city} for {day} with {p}.",
    "First, the weather: {p} should have the {day} forecast for {city}.",
)
_NEXT_FORECAST = ("Now the weather: I'll ask {p} for the {day} forecast in {city}.", "Next, the forecast for {city} on {day} from {p}.")


def _after_failure(t: Transcript, result: ToolResult, provider: str, what: str) -> str:
    if result.error.startswith("429"):
        return t.say("{p} is rate-limited right now, so I'll get the {what} from another provider.",
                     "The {what} request to {p} hit a rate limit (429). I'll switch to the backup API.", p=provider, what=what)
    return t.say("{p} could not help: \"{error}\". Let me try the other {what} service.",
                 "That failed ({error}). I'll see whether the backup {what} API knows more.",
                 p=provider, what=what, error=result.error[:80])


_FIRST_EXCHANGE = ("I'll convert {amount} {base} to {quote} with the fx_rates API.", "Let me convert {amount} {base} into {quote}.")
_NEXT_EXCHANGE = ("Next I'll convert {amount} {base} to {quote} with fx_rates.", "Now the money: converting {amount} {base} into {quote}.")


def exchange(t: Transcript, amount: float, base: str, quote: str, first: bool = True) -> float | None:
    """The converted amount from fx_rates, or computed from the backup's rate table after a
    failure; None when neither service can convert the pair."""
    options = _FIRST_EXCHANGE if first else _NEXT_EXCHANGE
    thought = t.say(*options, amount=amount, base=base, quote=quote)
    result, value = t.call(thought, "convert_for_fx_rates", {"amount": amount, "from_currency": base, "to_currency": quote})
    if value is not None:
        return value["result"]
    if not result.error.startswith("429") and t.rng.random() < 0.5:
        return None
    thought = _after_failure(t, result, "fx_rates", "exchange rate")
    result, value = t.call(thought, "latest_rates_for_exchangerate_backup", {"base": base})
    if value is None or quote not in value["rates"]:
        return None
    return round(amount * value["rates"][quote], 2)


def city_facts(t: Transcript, city: str, why: str) -> dict[str, Any] | None:
    thought = t.say("I'll look up {city} in geodb to find {why}.", "First I need {why}, which geodb's city details give.",
                    city=city, why=why)
    return t.call(thought, "city_details_for_geodb", {"city": city})[1]


# --- one solver per task kind -------------------------------------------------------------

def solve_weather(t: Transcript, s: dict[str, Any]) -> None:
    weather = forecast(t, s["city"], s["date"], s["fahrenheit"])
    if weather is None:
        return t.give_up(f"No weather service knows '{s['city']}'.")
    t.answer(t.say("On {day} in {city} expect {condition} with a temperature of {temperature}.",
                   "The forecast for {city} on {day}: {temperature}, {condition}.", day=s["date"], city=s["city"], **weather))


def solve_currency(t: Transcript, s: dict[str, Any]) -> None:
    if s["by_name"] and t.rng.random() < 0.6:
        thought = "The user named the currencies; let me check their codes in the list of supported currencies."
        t.call(thought, "list_currencies_for_fx_rates", {})
    converted = exchange(t, s["amount"], s["base"], s["quote"])
    if converted is None:
        return t.give_up(f"Neither exchange service can convert {s['base']} to {s['quote']}.")
    t.answer(t.say("{amount} {base} is {value:.2f} {quote}.",
                   "At the current rate, {amount} {base} converts to {value:.2f} {quote}.",
                   amount=s["amount"], base=s["base"], quote=s["quote"], value=converted))


def solve_units(t: Transcript, s: dict[str, Any]) -> None:
    thought = t.say("This is a unit conversion; unitconverter can do it in one call.",
                    "I'll convert {value} {from_unit} to {to_unit}.", **s)
    arguments = {"value": s["value"], "from_unit": s["from_unit"], "to_unit": s["to_unit"]}
    result, value = t.call(thought, "convert_units_for_unitconverter", arguments)
    if value is None:
        return t.give_up(f"The converter rejected the request ({result.error.split(';')[0]}).")
    t.answer(t.say("{value} {from_unit} is {result:.2f} {symbol}.", "That is {result:.2f} {symbol} ({value} {from_unit}).",
                   **{**s, **value}))


def solve_product(t: Transcript, s: dict[str, Any]) -> None:
    thought = t.say("I'll search the catalogue for {category} under ${max_price:.0f}, sorted by {order}.",
                    "Let me find {category} products costing at most ${max_price:.0f}.", order=s["sort"], **s)
    arguments = {"query": s["category"], "max_price": s["max_price"], "sort": s["sort"]}
    _, found = t.call(thought, "search_products_for_shopcatalog", arguments)
    match = next(r for r in found["results"] if r["category"] == s["category"])
    thought = t.say("The top {category} is {name} ({id}). I'll get its details to check the stock.",
                    "{name} looks right; let me fetch its price and stock.", **match)
    result, details = t.call(thought, "product_details_for_shopcatalog", {"product_id": match["id"]})
    if details is None:
        thought = _after_failure(t, result, "shopcatalog", "product data") + " pricewatch tracks the same products."
        details = t.call(thought, "price_and_stock_for_pricewatch", {"product_id": match["id"]})[1]
    stock = f"{details['stock']} in stock" if details["stock"] else "out of stock"
    t.answer(t.say("The {name} costs ${price:.2f} and is {stock}.", "I recommend the {name}: ${price:.2f}, currently {stock}.",
                   name=details["name"], price=details["price_usd"], stock=stock))


def solve_next_holiday(t: Transcript, s: dict[str, Any]) -> None:
    city = city_facts(t, s["city"], "the country of " + s["city"])
    thought = t.say("{city} is in {country} ({code}). Now the next public holiday from {day}.",
                    "The country code is {code}; I'll ask holidayapi for the next holiday on or after {day}.",
                    city=s["city"], country=city["country"], code=city["country_code"], day=s["date"])
    arguments = {"country_code": city["country_code"], "date": s["date"]}
    result, holiday = t.call(thought, "next_public_holiday_for_holidayapi", arguments)
    if holiday is None:
        return t.give_up(f"holidayapi has no calendar for {city['country']}.")
    t.answer(t.say("The next public holiday in {city} is {name} on {date}, {days} days after {start}.",
                   "In {city} ({country}) the next public holiday is {name}, on {date}.",
                   city=s["city"], country=city["country"], start=s["date"], days=holiday["days_until"], **holiday))


def solve_holiday_count(t: Transcript, s: dict[str, Any]) -> None:
    thought = t.say("I'll fetch the 2025 holiday calendar of {country} ({country_code}).",
                    "Let me list the public holidays of {country} for 2025.", **s)
    result, value = t.call(thought, "public_holidays_for_holidayapi", {"country_code": s["country_code"], "year": 2025})
    if value is None:
        return t.give_up(f"holidayapi has no calendar for {s['country']}.")
    last = value["holidays"][-1]
    t.answer(t.say("{country} has {count} public holidays in 2025; the last one is {name} on {date}.",
                   "There are {count} public holidays in {country} in 2025. The final one is {name} ({date}).",
                   country=s["country"], count=len(value["holidays"]), **last))


def solve_time(t: Transcript, s: dict[str, Any]) -> None:
    if s["two_lookups"]:
        offsets = []
        for city in (s["from_city"], s["to_city"]):
            result, zone = t.call(t.say("I need the UTC offset of {city}.", "Let me get the time zone of {city}.", city=city),
                                  "timezone_for_worldclock", {"city": city})
            if zone is None:
                return t.give_up(f"worldclock does not know '{city}'.")
            offsets.append(_offset_minutes(zone["utc_offset"]))
        moved = _shift(s["time"], offsets[1] - offsets[0])
    else:
        thought = t.say("worldclock can convert {time} from {from_city} to {to_city} directly.",
                        "I'll convert the time between the two cities.", **s)
        arguments = {"time": s["time"], "from_city": s["from_city"], "to_city": s["to_city"]}
        result, value = t.call(thought, "convert_time_for_worldclock", arguments)
        if value is None:
            return t.give_up(f"worldclock could not convert the time ({result.error}).")
        moved = (value["to"]["time"], value["to"]["day_offset"])
    day = {-1: " (the previous day)", 0: "", 1: " (the next day)"}[moved[1]]
    t.answer(t.say("When it is {time} in {from_city}, it is {moved}{day} in {to_city}.",
                   "{time} in {from_city} is {moved}{day} in {to_city}.", moved=moved[0], day=day, **s))


def _offset_minutes(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    return sign * (int(text[1:3]) * 60 + int(text[4:6]))


def _shift(time_hhmm: str, minutes: int) -> tuple[str, int]:
    total = int(time_hhmm[:2]) * 60 + int(time_hhmm[3:]) + minutes
    day, total = divmod(total, 24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}", day


def solve_trip(t: Transcript, s: dict[str, Any]) -> None:
    city = city_facts(t, s["city"], "the local currency")
    if city is None:
        return t.give_up(f"geodb does not know '{s['city']}', so I cannot find its weather or currency.")
    weather = forecast(t, s["city"], s["date"], first=False)
    converted = exchange(t, s["amount"], s["base"], city["currency"], first=False)
    if weather is None or converted is None:
        return t.give_up("A service I need keeps failing.")
    t.answer(t.say("In {city} on {day} expect {condition}, {temperature}. Your {amount} {base} is worth {value:.2f} {quote}.",
                   "Forecast for {city} on {day}: {temperature} and {condition}. {amount} {base} converts to {value:.2f} {quote}.",
                   city=city["name"], day=s["date"], amount=s["amount"], base=s["base"], quote=city["currency"],
                   value=converted, **weather))


def solve_city_currency(t: Transcript, s: dict[str, Any]) -> None:
    city = city_facts(t, s["city"], "the currency used in " + s["city"])
    converted = exchange(t, s["amount"], s["base"], city["currency"], first=False)
    if converted is None:
        return t.give_up("The exchange services are failing.")
    t.answer(t.say("{city} uses the {currency}; {amount} USD is {value:.2f} {currency}.",
                   "The local currency in {city} is {currency}. {amount} USD would be worth {value:.2f} {currency}.",
                   city=city["name"], currency=city["currency"], amount=s["amount"], value=converted))


def solve_country_facts(t: Transcript, s: dict[str, Any]) -> None:
    city = city_facts(t, s["city"], "which country " + s["city"] + " is in")
    thought = t.say("{city} is in {country}. Now the country's details.",
                    "I'll look up {country} ({country_code}) for its capital and calling code.", city=s["city"], **city)
    country = t.call(thought, "country_details_for_geodb", {"country_code": city["country_code"]})[1]
    t.answer(t.say("{city} is in {name}, whose capital is {capital}; the calling code is {calling_code}.",
                   "The capital of {name} is {capital}, and its international calling code is {calling_code}.",
                   city=s["city"], **country))


SOLVERS: dict[str, Callable[[Transcript, dict[str, Any]], None]] = {
    "weather": solve_weather, "currency": solve_currency, "units": solve_units, "product": solve_product,
    "next_holiday": solve_next_holiday, "holiday_count": solve_holiday_count, "time": solve_time, "trip": solve_trip,
    "city_currency": solve_city_currency, "country_facts": solve_country_facts,
}


def solve(task: Task) -> Episode:
    """Run the scripted solver on a task (deterministic: the same task gives the same episode)."""
    transcript = Transcript(task, random.Random(task.seed))
    SOLVERS[task.kind](transcript, task.slots)
    if transcript.finish is None:
        raise RuntimeError(f"solver for {task.kind!r} ended task {task.id} without an answer or a give-up")
    thought, answer = transcript.finish
    return Episode(task, tuple(transcript.steps), thought, answer)
