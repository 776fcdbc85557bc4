"""The synthetic tool world: 15 deterministic APIs in 10 RapidAPI-style tools.

Some APIs fail on purpose, always for the same inputs, so trajectories contain the situations
an agent must learn to handle:
- rate limits: `daily_forecast_for_skycast` and `convert_for_fx_rates` answer 429 for a fixed
  share of their inputs; `weather_by_city_for_weatherhub` and
  `latest_rates_for_exchangerate_backup` are working backups;
- a flaky backend: `product_details_for_shopcatalog` answers 503 for some products, whose
  price and stock `price_and_stock_for_pricewatch` still knows;
- unknown inputs: cities, currency codes, units and holiday calendars the world does not have.
"""

from __future__ import annotations

from datetime import date as Date
from typing import Any

from umi_data.synth import data
from umi_data.synth.toolkit import SynthTool, ToolResult, fail, param, parameters_schema, succeed

#: The RapidAPI-style tools (groups of APIs) and what the system prompt says about each.
TOOL_DESCRIPTIONS: dict[str, str] = {
    "skycast": "Daily weather forecasts for major world cities (free plan, rate-limited).",
    "weatherhub": "Weather by city name and date, in Celsius or Fahrenheit.",
    "fx_rates": "Currency conversion at the latest published exchange rates.",
    "exchangerate_backup": "Mirror of exchange-rate tables for a base currency.",
    "unitconverter": "Converts lengths, masses, volumes and temperatures.",
    "shopcatalog": "Search and product details of an online electronics and outdoor store.",
    "pricewatch": "Price and stock tracker for the store's products.",
    "holidayapi": "National public holidays by country (2025 calendars).",
    "worldclock": "Time zones (standard time) and time conversion between cities.",
    "geodb": "Facts about cities and countries: population, currency, time zone, languages.",
}
RATE_LIMIT = ("429 Too Many Requests: the {tool} free plan is over its request quota for these parameters; "
              "retry later or use another provider")
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _parse_day(text: str) -> Date | None:
    """The date if it is a valid day of the year the services cover."""
    try:
        day = Date.fromisoformat(text)
    except ValueError:
        return None
    return day if day.year == data.YEAR else None


def _bad_day(text: str) -> ToolResult:
    return fail(f"400 Bad Request: date '{text}' is not a day of {data.YEAR} "
                f"(data covers {data.YEAR}-01-01 to {data.YEAR}-12-31)")


# --- weather ------------------------------------------------------------------------------

def skycast_is_rate_limited(city: str, day: str) -> bool:
    return data.stable_hash("skycast", data.fold(city), day) % 4 == 0


def daily_forecast(args: dict[str, Any]) -> ToolResult:
    city, day = args["city"], args["date"]
    if skycast_is_rate_limited(city, day):
        return fail(RATE_LIMIT.format(tool="skycast"))
    found = data.find_city(city)
    if found is None:
        return fail(f"404 Not Found: no weather station matches the city '{city}'")
    if _parse_day(day) is None:
        return _bad_day(day)
    w = data.day_weather(found, day)
    return succeed({"city": found.name, "country": found.country_code, "date": day, "temperature_c": w.temperature_c,
                    "condition": w.condition, "humidity_pct": w.humidity, "wind_kph": w.wind_kph})


def weather_by_city(args: dict[str, Any]) -> ToolResult:
    city, day, units = args["city"], args["date"], args["units"]
    found = data.find_city(city)
    if found is None:
        return fail(f"city not found: '{city}'")
    if _parse_day(day) is None:
        return _bad_day(day)
    w = data.day_weather(found, day)
    temperature = w.temperature_c if units == "celsius" else round(w.temperature_c * 9 / 5 + 32, 1)
    return succeed({"location": {"name": found.name, "country_code": found.country_code}, "date": day,
                    "forecast": {"temperature": temperature, "unit": "C" if units == "celsius" else "F",
                                 "summary": w.condition, "humidity": w.humidity}})


# --- currencies ---------------------------------------------------------------------------

def fx_is_rate_limited(amount: float, base: str, quote: str) -> bool:
    return data.stable_hash("fx", float(amount), base, quote) % 4 == 0


def convert_currency(args: dict[str, Any]) -> ToolResult:
    amount, base, quote = args["amount"], args["from_currency"], args["to_currency"]
    if fx_is_rate_limited(amount, base, quote):
        return fail(RATE_LIMIT.format(tool="fx_rates"))
    for code in (base, quote):
        if code not in data.USD_RATES:
            return fail(f"400 Bad Request: unsupported currency code '{code}'")
    return succeed({"from": base, "to": quote, "amount": amount, "rate": data.usd_cross_rate(base, quote),
                    "result": data.convert_amount(amount, base, quote)})


def list_currencies(args: dict[str, Any]) -> ToolResult:
    return succeed({"currencies": [{"code": code, "name": name} for code, name in data.CURRENCY_NAMES.items()]})


def latest_rates(args: dict[str, Any]) -> ToolResult:
    base = args["base"]
    if base not in data.USD_RATES:
        return fail(f"unknown base currency '{base}'")
    return succeed({"base": base, "rates": {code: data.usd_cross_rate(base, code) for code in data.USD_RATES}})


# --- units --------------------------------------------------------------------------------

_UNIT_KEYS = {key.casefold(): unit for unit in data.UNITS.values() for key in (unit.name, unit.name + "s", unit.symbol)}


def convert_units(args: dict[str, Any]) -> ToolResult:
    value, names = args["value"], (args["from_unit"], args["to_unit"])
    units = [_UNIT_KEYS.get(name.casefold()) for name in names]
    for name, unit in zip(names, units):
        if unit is None:
            return fail(f"unknown unit '{name}'; supported units: {', '.join(data.UNITS)}")
    source, target = units
    if source.dimension != target.dimension:
        return fail(f"cannot convert {source.dimension} ({source.name}) to {target.dimension} ({target.name})")
    return succeed({"value": value, "from_unit": source.name, "to_unit": target.name,
                    "result": data.convert_unit_value(value, source, target), "symbol": target.symbol})


# --- shopping -----------------------------------------------------------------------------

_SEARCH_TEXT = tuple((p, data.fold(f"{p.name} {p.brand} {p.category}")) for p in data.PRODUCTS)


def search_matches(query: str, max_price: float | None, sort: str) -> list[data.Product]:
    """The catalogue's search: every query word in the product's name, brand or category."""
    words = data.fold(query).split()
    found = [p for p, text in _SEARCH_TEXT if all(w in text for w in words)]
    if max_price is not None:
        found = [p for p in found if p.price_usd <= max_price]
    keys = {"price_asc": lambda p: p.price_usd, "price_desc": lambda p: -p.price_usd, "rating": lambda p: -p.rating}
    return sorted(found, key=keys[sort]) if sort in keys else found


def search_products(args: dict[str, Any]) -> ToolResult:
    found = search_matches(args["query"], args.get("max_price"), args["sort"])
    results = [{"id": p.id, "name": p.name, "category": p.category, "price_usd": p.price_usd, "rating": p.rating}
               for p in found[:5]]
    return succeed({"query": args["query"], "total": len(found), "results": results})


def details_backend_down(product_id: str) -> bool:
    return data.stable_hash("shopcatalog", product_id) % 3 == 0


def product_details(args: dict[str, Any]) -> ToolResult:
    product = data.PRODUCT_BY_ID.get(args["product_id"])
    if product is None:
        return fail(f"404 Not Found: no product with id '{args['product_id']}'")
    if details_backend_down(product.id):
        return fail("503 Service Unavailable: the catalogue backend timed out")
    return succeed({"id": product.id, "name": product.name, "brand": product.brand, "category": product.category,
                    "price_usd": product.price_usd, "rating": product.rating, "stock": product.stock,
                    "in_stock": product.stock > 0, "warranty_months": product.warranty_months})


def price_and_stock(args: dict[str, Any]) -> ToolResult:
    product = data.PRODUCT_BY_ID.get(args["product_id"])
    if product is None:
        return fail(f"unknown product id '{args['product_id']}'")
    return succeed({"product_id": product.id, "name": product.name, "price_usd": product.price_usd,
                    "stock": product.stock, "in_stock": product.stock > 0})


# --- holidays -----------------------------------------------------------------------------

def _calendar(code: str) -> tuple[tuple[tuple[str, str], ...] | None, ToolResult | None]:
    calendar = data.HOLIDAYS.get(code.upper())
    if calendar is None:
        return None, fail(f"404 Not Found: no holiday calendar for country '{code}' on this plan")
    return calendar, None


def public_holidays(args: dict[str, Any]) -> ToolResult:
    calendar, error = _calendar(args["country_code"])
    if error is not None:
        return error
    if args["year"] != data.YEAR:
        return fail(f"only the {data.YEAR} calendar is available, not {args['year']}")
    return succeed({"country_code": args["country_code"].upper(), "year": data.YEAR,
                    "holidays": [{"date": d, "name": n} for d, n in calendar]})


def next_public_holiday(args: dict[str, Any]) -> ToolResult:
    calendar, error = _calendar(args["country_code"])
    if error is not None:
        return error
    day = _parse_day(args["date"])
    if day is None:
        return _bad_day(args["date"])
    upcoming = [(d, n) for d, n in calendar if d >= args["date"]]
    if not upcoming:
        return fail(f"no public holiday left in the {data.YEAR} calendar after {args['date']}")
    holiday_date, name = upcoming[0]
    days = (Date.fromisoformat(holiday_date) - day).days
    return succeed({"country_code": args["country_code"].upper(), "from_date": args["date"], "date": holiday_date,
                    "name": name, "days_until": days})


# --- time zones and places ----------------------------------------------------------------

def _city_or_error(name: str, prefix: str = "404 Not Found: ") -> tuple[data.City | None, ToolResult | None]:
    found = data.find_city(name)
    return found, (None if found is not None else fail(f"{prefix}unknown city '{name}'"))


def timezone(args: dict[str, Any]) -> ToolResult:
    city, error = _city_or_error(args["city"])
    if error is not None:
        return error
    return succeed({"city": city.name, "timezone": city.timezone, "utc_offset": data.format_offset(city.utc_offset_minutes),
                    "observes_dst": False})


def convert_time(args: dict[str, Any]) -> ToolResult:
    (source, error), (target, error2) = _city_or_error(args["from_city"]), _city_or_error(args["to_city"])
    if error or error2:
        return error or error2
    moved, day_shift = data.local_time(args["time"], source.utc_offset_minutes, target.utc_offset_minutes)
    return succeed({"from": {"city": source.name, "time": args["time"], "utc_offset": data.format_offset(source.utc_offset_minutes)},
                    "to": {"city": target.name, "time": moved, "utc_offset": data.format_offset(target.utc_offset_minutes),
                           "day_offset": day_shift}})


def city_details(args: dict[str, Any]) -> ToolResult:
    city, error = _city_or_error(args["city"], prefix="")
    if error is not None:
        return error
    country = data.COUNTRIES[city.country_code]
    return succeed({"name": city.name, "country": country.name, "country_code": country.code, "population": city.population,
                    "currency": country.currency, "timezone": city.timezone})


def country_details(args: dict[str, Any]) -> ToolResult:
    country = data.COUNTRIES.get(args["country_code"].upper())
    if country is None:
        return fail(f"unknown country code '{args['country_code']}'")
    return succeed({"code": country.code, "name": country.name, "capital": country.capital, "currency": country.currency,
                    "calling_code": country.calling_code, "languages": list(country.languages)})


# --- the registry -------------------------------------------------------------------------

_CITY = param("string", "City name in English, e.g. the city's usual name", "Paris")
_DAY = param("string", f"Day in YYYY-MM-DD format ({data.YEAR} only)", f"{data.YEAR}-05-14", pattern=DATE_PATTERN)
_CURRENCY = "ISO 4217 currency code, three capital letters"
_CODE = param("string", "ISO 3166-1 alpha-2 country code", "FR")
_PRODUCT = param("string", "Product id as returned by the search, e.g. SKU-1001", "SKU-1001")


def _api(name: str, tool: str, description: str, handler: Any, properties: dict[str, dict], required: list[str],
         defaults: dict[str, Any] | None = None) -> SynthTool:
    return SynthTool(name, tool, description, parameters_schema(properties, required), handler, defaults or {})


WORLD: tuple[SynthTool, ...] = (
    _api("daily_forecast_for_skycast", "skycast", "Forecast of one day for a city: temperature in °C, condition, humidity and wind.",
         daily_forecast, {"city": _CITY, "date": _DAY}, ["city", "date"]),
    _api("weather_by_city_for_weatherhub", "weatherhub", "Weather of a city on a given day, in the requested units.",
         weather_by_city, {"city": _CITY, "date": _DAY,
                           "units": param("string", "Temperature units (default celsius)", "celsius", enum=["celsius", "fahrenheit"])},
         ["city", "date"], {"units": "celsius"}),
    _api("convert_for_fx_rates", "fx_rates", "Converts an amount from one currency to another at the latest rate.",
         convert_currency, {"amount": param("number", "Amount to convert", 100, minimum=0),
                            "from_currency": param("string", f"{_CURRENCY} of the amount", "USD", pattern=r"^[A-Z]{3}$"),
                            "to_currency": param("string", f"{_CURRENCY} to convert into", "EUR", pattern=r"^[A-Z]{3}$")},
         ["amount", "from_currency", "to_currency"]),
    _api("list_currencies_for_fx_rates", "fx_rates", "Lists the supported currencies with their codes and names.",
         list_currencies, {}, []),
    _api("latest_rates_for_exchangerate_backup", "exchangerate_backup",
         "Exchange rates of every supported currency against a base currency (units of each currency per unit of base).",
         latest_rates, {"base": param("string", f"{_CURRENCY} of the base", "USD", pattern=r"^[A-Z]{3}$")}, ["base"]),
    _api("convert_units_for_unitconverter", "unitconverter",
         "Converts a value between units of length, mass, volume or temperature, by unit name (e.g. mile, kilogram, fahrenheit).",
         convert_units, {"value": param("number", "Value to convert", 26.2),
                         "from_unit": param("string", "Unit of the value (singular name or symbol)", "mile"),
                         "to_unit": param("string", "Unit to convert into (singular name or symbol)", "kilometer")},
         ["value", "from_unit", "to_unit"]),
    _api("search_products_for_shopcatalog", "shopcatalog",
         "Searches the catalogue; returns at most 5 products with id, name, category, price and rating.",
         search_products, {"query": param("string", "Words to search for in product names, brands and categories", "headphones"),
                           "max_price": param("number", "Highest price in USD", 100, minimum=0),
                           "sort": param("string", "Result order (default relevance)", "price_asc",
                                         enum=["relevance", "price_asc", "price_desc", "rating"])},
         ["query"], {"sort": "relevance"}),
    _api("product_details_for_shopcatalog", "shopcatalog", "Full details of one product: price, rating, stock and warranty.",
         product_details, {"product_id": _PRODUCT}, ["product_id"]),
    _api("price_and_stock_for_pricewatch", "pricewatch", "Current price and stock level of a store product.",
         price_and_stock, {"product_id": _PRODUCT}, ["product_id"]),
    _api("public_holidays_for_holidayapi", "holidayapi", "All national public holidays of a country in a year.",
         public_holidays, {"country_code": _CODE, "year": param("integer", "Calendar year", data.YEAR)}, ["country_code", "year"]),
    _api("next_public_holiday_for_holidayapi", "holidayapi", "The first national public holiday of a country on or after a date.",
         next_public_holiday, {"country_code": _CODE, "date": _DAY}, ["country_code", "date"]),
    _api("timezone_for_worldclock", "worldclock", "Time zone and UTC offset (standard time) of a city.",
         timezone, {"city": _CITY}, ["city"]),
    _api("convert_time_for_worldclock", "worldclock", "Converts a wall-clock time in one city to the local time in another city.",
         convert_time, {"time": param("string", "Time as HH:MM (24-hour clock)", "09:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$"),
                        "from_city": _CITY, "to_city": _CITY}, ["time", "from_city", "to_city"]),
    _api("city_details_for_geodb", "geodb", "Facts about a city: country, country code, population, currency and time zone.",
         city_details, {"city": _CITY}, ["city"]),
    _api("country_details_for_geodb", "geodb", "Facts about a country: name, capital, currency, calling code and languages.",
         country_details, {"country_code": _CODE}, ["country_code"]),
)

TOOLS_BY_NAME: dict[str, SynthTool] = {tool.name: tool for tool in WORLD}
TOOL_GROUPS: dict[str, tuple[SynthTool, ...]] = {
    group: tuple(t for t in WORLD if t.tool == group) for group in TOOL_DESCRIPTIONS
}


def tool_by_name(name: str) -> SynthTool | None:
    """The tool called `name`, or None (an agent turns None into an unknown-tool observation)."""
    return TOOLS_BY_NAME.get(name)


def call_tool(name: str, arguments: Any) -> ToolResult:
    """Run a tool by name; an unknown name is an error result listing the valid names."""
    tool = TOOLS_BY_NAME.get(name)
    if tool is None:
        return fail(f"no such function '{name}'; available: {', '.join(TOOLS_BY_NAME)}")
    return tool.call(arguments)


def function_schemas(groups: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """ToolBench `function` entries (without Finish) of the given tools' APIs, or of the whole world."""
    chosen = WORLD if groups is None else [t for g in groups for t in TOOL_GROUPS[g]]
    return [tool.function_schema() for tool in chosen]
