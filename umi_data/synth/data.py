"""The fixed tables behind the synthetic tool world.

Everything a tool answers comes from these tables (plus a stable hash for day-to-day weather),
so a call gives the same observation on every machine and in every run, and a task's expected
answer can be computed from the tables without going through the tools. Values are realistic
but frozen: time zones are standard time without daylight saving, exchange rates are one fixed
snapshot, holidays are the 2025 national calendars.
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache

#: The only year the weather and holiday services know.
YEAR = 2025


@dataclass(frozen=True)
class City:
    name: str
    country_code: str
    timezone: str
    utc_offset_minutes: int
    population: int
    monthly_mean_c: tuple[int, ...]  # January..December


CITIES: tuple[City, ...] = (
    City("Paris", "FR", "Europe/Paris", 60, 2_102_650, (5, 6, 9, 12, 16, 19, 21, 21, 17, 13, 8, 5)),
    City("Berlin", "DE", "Europe/Berlin", 60, 3_878_100, (1, 2, 5, 10, 14, 18, 20, 19, 15, 10, 5, 2)),
    City("Madrid", "ES", "Europe/Madrid", 60, 3_332_035, (6, 8, 11, 13, 17, 23, 26, 25, 21, 15, 10, 7)),
    City("Rome", "IT", "Europe/Rome", 60, 2_749_031, (8, 9, 11, 14, 18, 22, 25, 25, 21, 17, 12, 9)),
    City("London", "GB", "Europe/London", 0, 8_866_180, (5, 6, 8, 10, 13, 16, 19, 18, 16, 12, 8, 6)),
    City("Tokyo", "JP", "Asia/Tokyo", 540, 14_094_034, (5, 6, 9, 14, 19, 22, 26, 27, 23, 18, 13, 8)),
    City("New York", "US", "America/New_York", -300, 8_258_035, (0, 2, 6, 12, 17, 22, 25, 24, 21, 14, 9, 3)),
    City("San Francisco", "US", "America/Los_Angeles", -480, 808_988, (11, 12, 13, 14, 15, 16, 17, 17, 18, 17, 14, 11)),
    City("Toronto", "CA", "America/Toronto", -300, 2_794_356, (-5, -4, 1, 8, 14, 19, 22, 21, 17, 10, 4, -2)),
    City("Sydney", "AU", "Australia/Sydney", 600, 5_450_496, (23, 23, 22, 19, 16, 14, 13, 14, 17, 19, 21, 22)),
    City("Mumbai", "IN", "Asia/Kolkata", 330, 12_478_447, (24, 25, 27, 29, 30, 29, 28, 27, 28, 29, 28, 26)),
    City("Mexico City", "MX", "America/Mexico_City", -360, 9_209_944, (14, 16, 18, 19, 20, 19, 18, 18, 18, 17, 16, 15)),
    City("São Paulo", "BR", "America/Sao_Paulo", -180, 11_451_999, (23, 23, 22, 20, 18, 17, 16, 18, 19, 20, 21, 22)),
    City("Zurich", "CH", "Europe/Zurich", 60, 427_721, (0, 1, 5, 9, 13, 17, 19, 18, 14, 10, 4, 1)),
    City("Seoul", "KR", "Asia/Seoul", 540, 9_386_034, (-2, 1, 6, 13, 18, 23, 25, 26, 21, 15, 7, 0)),
    City("Cairo", "EG", "Africa/Cairo", 120, 10_044_894, (14, 15, 18, 22, 25, 27, 28, 28, 26, 24, 19, 15)),
    City("Singapore", "SG", "Asia/Singapore", 480, 5_917_600, (27, 27, 28, 28, 28, 28, 28, 28, 27, 27, 27, 27)),
)

#: Places users ask about that no service knows: they make the unknown-city failures.
UNKNOWN_CITIES = ("Atlantis", "El Dorado", "Gotham", "Zubrowka", "Eldoria", "Port Verdant", "Nova Lisbon")


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    capital: str
    currency: str
    calling_code: str
    languages: tuple[str, ...]


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("FR", "France", "Paris", "EUR", "+33", ("French",)),
        Country("DE", "Germany", "Berlin", "EUR", "+49", ("German",)),
        Country("ES", "Spain", "Madrid", "EUR", "+34", ("Spanish",)),
        Country("IT", "Italy", "Rome", "EUR", "+39", ("Italian",)),
        Country("GB", "United Kingdom", "London", "GBP", "+44", ("English",)),
        Country("JP", "Japan", "Tokyo", "JPY", "+81", ("Japanese",)),
        Country("US", "United States", "Washington, D.C.", "USD", "+1", ("English",)),
        Country("CA", "Canada", "Ottawa", "CAD", "+1", ("English", "French")),
        Country("AU", "Australia", "Canberra", "AUD", "+61", ("English",)),
        Country("IN", "India", "New Delhi", "INR", "+91", ("Hindi", "English")),
        Country("MX", "Mexico", "Mexico City", "MXN", "+52", ("Spanish",)),
        Country("BR", "Brazil", "Brasília", "BRL", "+55", ("Portuguese",)),
        Country("CH", "Switzerland", "Bern", "CHF", "+41", ("German", "French", "Italian", "Romansh")),
        Country("KR", "South Korea", "Seoul", "KRW", "+82", ("Korean",)),
        Country("EG", "Egypt", "Cairo", "EGP", "+20", ("Arabic",)),
        Country("SG", "Singapore", "Singapore", "SGD", "+65", ("English", "Malay", "Mandarin", "Tamil")),
    )
}

#: Units of currency per US dollar (one frozen snapshot), and the currencies' names.
USD_RATES: dict[str, float] = {
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.2, "CAD": 1.36, "AUD": 1.52, "INR": 83.4,
    "MXN": 17.05, "BRL": 5.05, "CHF": 0.9, "KRW": 1350.0, "EGP": 47.5, "SGD": 1.35,
}
CURRENCY_NAMES: dict[str, str] = {
    "USD": "US Dollar", "EUR": "Euro", "GBP": "Pound Sterling", "JPY": "Japanese Yen",
    "CAD": "Canadian Dollar", "AUD": "Australian Dollar", "INR": "Indian Rupee", "MXN": "Mexican Peso",
    "BRL": "Brazilian Real", "CHF": "Swiss Franc", "KRW": "South Korean Won", "EGP": "Egyptian Pound",
    "SGD": "Singapore Dollar",
}
#: Well-formed codes that the exchange services do not carry: the invalid-currency failures.
UNSUPPORTED_CURRENCIES = ("BTC", "XAU", "VES", "ZWL", "XYZ")


@dataclass(frozen=True)
class Unit:
    name: str
    symbol: str
    dimension: str
    to_base: float  # multiply to get the dimension's base unit (temperatures are affine, see tools)


UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("meter", "m", "length", 1.0),
        Unit("kilometer", "km", "length", 1000.0),
        Unit("centimeter", "cm", "length", 0.01),
        Unit("mile", "mi", "length", 1609.344),
        Unit("foot", "ft", "length", 0.3048),
        Unit("inch", "in", "length", 0.0254),
        Unit("kilogram", "kg", "mass", 1.0),
        Unit("gram", "g", "mass", 0.001),
        Unit("pound", "lb", "mass", 0.45359237),
        Unit("ounce", "oz", "mass", 0.028349523125),
        Unit("liter", "L", "volume", 1.0),
        Unit("milliliter", "mL", "volume", 0.001),
        Unit("gallon", "gal", "volume", 3.785411784),
        Unit("celsius", "°C", "temperature", 1.0),
        Unit("fahrenheit", "°F", "temperature", 1.0),
        Unit("kelvin", "K", "temperature", 1.0),
    )
}
#: Real units the converter does not support: the unknown-unit failures.
UNSUPPORTED_UNITS = ("furlong", "stone", "fathom", "hogshead", "league")


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    brand: str
    category: str
    price_usd: float
    rating: float
    stock: int
    warranty_months: int


PRODUCTS: tuple[Product, ...] = (
    Product("SKU-1001", "AeroBeat Wireless Headphones", "AeroBeat", "headphones", 89.99, 4.3, 14, 12),
    Product("SKU-1002", "Quietline ANC 700", "Quietline", "headphones", 249.0, 4.7, 6, 24),
    Product("SKU-1003", "BassBuds Studio", "BassBuds", "headphones", 59.5, 3.9, 0, 12),
    Product("SKU-1004", "Sonora Over-Ear Pro", "Sonora", "headphones", 179.0, 4.5, 22, 24),
    Product("SKU-1005", "Pulse Sport Earphones", "Pulse", "headphones", 34.99, 4.0, 41, 6),
    Product("SKU-2001", "Nimbus 14 Ultrabook", "Nimbus", "laptop", 1099.0, 4.6, 5, 24),
    Product("SKU-2002", "Vertex G15 Gaming Laptop", "Vertex", "laptop", 1499.99, 4.4, 3, 24),
    Product("SKU-2003", "Slate 13 Chromebook", "Slate", "laptop", 329.0, 4.1, 18, 12),
    Product("SKU-2004", "Atlas Pro 16", "Atlas", "laptop", 2199.0, 4.8, 0, 36),
    Product("SKU-2005", "Nimbus 13 Air", "Nimbus", "laptop", 849.5, 4.2, 9, 12),
    Product("SKU-3001", "ArmorShell Phone Case", "ArmorShell", "phone case", 24.99, 4.4, 120, 12),
    Product("SKU-3002", "ClearView Slim Case", "ClearView", "phone case", 12.99, 3.8, 75, 6),
    Product("SKU-3003", "Leatherline Folio Case", "Leatherline", "phone case", 39.0, 4.6, 0, 12),
    Product("SKU-3004", "Grip+ Silicone Case", "Grip+", "phone case", 17.5, 4.1, 52, 6),
    Product("SKU-4001", "BrewMaster 12-Cup Coffee Maker", "BrewMaster", "coffee maker", 79.0, 4.2, 11, 24),
    Product("SKU-4002", "Barista Duo Espresso Machine", "Barista", "coffee maker", 349.99, 4.7, 4, 24),
    Product("SKU-4003", "PourOver Kettle Set", "PourOver", "coffee maker", 45.0, 4.5, 30, 12),
    Product("SKU-4004", "Capsula Mini", "Capsula", "coffee maker", 99.0, 3.7, 0, 12),
    Product("SKU-5001", "Stride Runner 3", "Stride", "running shoes", 119.99, 4.5, 16, 6),
    Product("SKU-5002", "TrailFox GTX", "TrailFox", "running shoes", 149.0, 4.6, 8, 6),
    Product("SKU-5003", "Featherlite Racer", "Featherlite", "running shoes", 179.5, 4.3, 2, 6),
    Product("SKU-5004", "Daily Jog Basic", "Stride", "running shoes", 64.99, 3.9, 37, 6),
    Product("SKU-6001", "Voyager 30L Backpack", "Voyager", "backpack", 89.0, 4.6, 23, 60),
    Product("SKU-6002", "CityPack Laptop Backpack", "CityPack", "backpack", 54.99, 4.2, 0, 24),
    Product("SKU-6003", "Summit 45L Hiking Pack", "Summit", "backpack", 159.0, 4.7, 7, 60),
    Product("SKU-6004", "Daypack Lite", "Voyager", "backpack", 29.99, 4.0, 64, 12),
)
PRODUCT_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(p.category for p in PRODUCTS))

#: National public holidays of 2025 by ISO country code (the countries the holiday API covers).
HOLIDAYS: dict[str, tuple[tuple[str, str], ...]] = {
    "US": (("2025-01-01", "New Year's Day"), ("2025-01-20", "Martin Luther King Jr. Day"), ("2025-02-17", "Presidents' Day"),
           ("2025-05-26", "Memorial Day"), ("2025-06-19", "Juneteenth"), ("2025-07-04", "Independence Day"),
           ("2025-09-01", "Labor Day"), ("2025-10-13", "Columbus Day"), ("2025-11-11", "Veterans Day"),
           ("2025-11-27", "Thanksgiving Day"), ("2025-12-25", "Christmas Day")),
    "FR": (("2025-01-01", "New Year's Day"), ("2025-04-21", "Easter Monday"), ("2025-05-01", "Labour Day"),
           ("2025-05-08", "Victory in Europe Day"), ("2025-05-29", "Ascension Day"), ("2025-06-09", "Whit Monday"),
           ("2025-07-14", "Bastille Day"), ("2025-08-15", "Assumption Day"), ("2025-11-01", "All Saints' Day"),
           ("2025-11-11", "Armistice Day"), ("2025-12-25", "Christmas Day")),
    "DE": (("2025-01-01", "New Year's Day"), ("2025-04-18", "Good Friday"), ("2025-04-21", "Easter Monday"),
           ("2025-05-01", "Labour Day"), ("2025-05-29", "Ascension Day"), ("2025-06-09", "Whit Monday"),
           ("2025-10-03", "German Unity Day"), ("2025-12-25", "Christmas Day"), ("2025-12-26", "St. Stephen's Day")),
    "GB": (("2025-01-01", "New Year's Day"), ("2025-04-18", "Good Friday"), ("2025-04-21", "Easter Monday"),
           ("2025-05-05", "Early May Bank Holiday"), ("2025-05-26", "Spring Bank Holiday"),
           ("2025-08-25", "Summer Bank Holiday"), ("2025-12-25", "Christmas Day"), ("2025-12-26", "Boxing Day")),
    "JP": (("2025-01-01", "New Year's Day"), ("2025-01-13", "Coming of Age Day"), ("2025-02-11", "National Foundation Day"),
           ("2025-02-23", "Emperor's Birthday"), ("2025-03-20", "Vernal Equinox Day"), ("2025-04-29", "Showa Day"),
           ("2025-05-03", "Constitution Memorial Day"), ("2025-05-05", "Children's Day"), ("2025-07-21", "Marine Day"),
           ("2025-08-11", "Mountain Day"), ("2025-09-23", "Autumnal Equinox Day"), ("2025-11-03", "Culture Day")),
    "CA": (("2025-01-01", "New Year's Day"), ("2025-04-18", "Good Friday"), ("2025-05-19", "Victoria Day"),
           ("2025-07-01", "Canada Day"), ("2025-09-01", "Labour Day"), ("2025-10-13", "Thanksgiving"),
           ("2025-11-11", "Remembrance Day"), ("2025-12-25", "Christmas Day"), ("2025-12-26", "Boxing Day")),
    "AU": (("2025-01-01", "New Year's Day"), ("2025-01-27", "Australia Day"), ("2025-04-18", "Good Friday"),
           ("2025-04-21", "Easter Monday"), ("2025-04-25", "Anzac Day"), ("2025-12-25", "Christmas Day"),
           ("2025-12-26", "Boxing Day")),
    "IT": (("2025-01-01", "New Year's Day"), ("2025-01-06", "Epiphany"), ("2025-04-21", "Easter Monday"),
           ("2025-04-25", "Liberation Day"), ("2025-05-01", "Labour Day"), ("2025-06-02", "Republic Day"),
           ("2025-08-15", "Ferragosto"), ("2025-11-01", "All Saints' Day"), ("2025-12-08", "Immaculate Conception"),
           ("2025-12-25", "Christmas Day"), ("2025-12-26", "St. Stephen's Day")),
    "ES": (("2025-01-01", "New Year's Day"), ("2025-01-06", "Epiphany"), ("2025-04-18", "Good Friday"),
           ("2025-05-01", "Labour Day"), ("2025-08-15", "Assumption Day"), ("2025-10-12", "National Day of Spain"),
           ("2025-11-01", "All Saints' Day"), ("2025-12-06", "Constitution Day"), ("2025-12-08", "Immaculate Conception"),
           ("2025-12-25", "Christmas Day")),
}

WEATHER_CONDITIONS = ("sunny", "partly cloudy", "cloudy", "light rain", "showers", "thunderstorms", "fog", "windy")


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Case- and accent-insensitive key, so "sao paulo" finds "São Paulo" as a real API would."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


CITY_BY_KEY: dict[str, City] = {fold(c.name): c for c in CITIES}
PRODUCT_BY_ID: dict[str, Product] = {p.id: p for p in PRODUCTS}


def find_city(name: str) -> City | None:
    return CITY_BY_KEY.get(fold(name))


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (unlike `hash()`, which is salted per run)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


@dataclass(frozen=True)
class DayWeather:
    temperature_c: int
    condition: str
    humidity: int
    wind_kph: int


def day_weather(city: City, date: str) -> DayWeather:
    """The (frozen) weather of a known city on a valid date: the month's mean ±4 °C and a
    condition, both drawn from a stable hash of (city, date)."""
    h = stable_hash("weather", city.name, date)
    month = int(date[5:7])
    temperature = city.monthly_mean_c[month - 1] + (h % 9) - 4
    condition = WEATHER_CONDITIONS[(h >> 8) % len(WEATHER_CONDITIONS)]
    if condition in ("light rain", "showers") and temperature <= 0:
        condition = "snow"
    return DayWeather(temperature, condition, 35 + (h >> 12) % 60, 3 + (h >> 20) % 35)


def usd_cross_rate(base: str, quote: str) -> float:
    """Units of `quote` per unit of `base`, rounded the way the exchange APIs publish it."""
    return round(USD_RATES[quote] / USD_RATES[base], 6)


def convert_amount(amount: float, base: str, quote: str) -> float:
    return round(amount * usd_cross_rate(base, quote), 2)


def convert_unit_value(value: float, source: Unit, target: Unit) -> float:
    """`value` in `source` expressed in `target` (same dimension), rounded to 2 decimals."""
    if source.dimension == "temperature":
        kelvin = {"celsius": value + 273.15, "fahrenheit": (value - 32) * 5 / 9 + 273.15, "kelvin": value}[source.name]
        result = {"celsius": kelvin - 273.15, "fahrenheit": (kelvin - 273.15) * 9 / 5 + 32, "kelvin": kelvin}[target.name]
    else:
        result = value * source.to_base / target.to_base
    return round(result, 2)


def local_time(time_hhmm: str, offset_from: int, offset_to: int) -> tuple[str, int]:
    """("HH:MM", day shift) of a wall-clock time moved from one UTC offset to another."""
    minutes = int(time_hhmm[:2]) * 60 + int(time_hhmm[3:5]) - offset_from + offset_to
    day_shift, minutes = divmod(minutes, 24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}", day_shift


def format_offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
