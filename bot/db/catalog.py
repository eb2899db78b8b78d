"""What Lumen Home sells: devices with their setup guides, and the cloud services they need."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

CLOUD_SERVICES: dict[str, str] = {
    "camera-cloud": "Camera Cloud (live view and recordings)",
    "mobile-app": "Lumen mobile app and remote access",
    "automations": "Automations and schedules",
    "voice": "Voice assistant integrations",
    "alerts": "Push and SMS alerts",
}


@dataclass(frozen=True)
class CatalogProduct:
    slug: str
    sku: str
    name: str
    price: Decimal
    services: tuple[str, ...]
    setup_steps: tuple[str, ...]

    @property
    def setup_guide(self) -> str:
        return "\n".join(f"{i}. {step}" for i, step in enumerate(self.setup_steps, start=1))

    @property
    def setup_guide_url(self) -> str:
        return f"https://help.lumen-home.example/setup/{self.slug.replace('_', '-')}"


PRODUCTS: tuple[CatalogProduct, ...] = (
    CatalogProduct(
        "thermostat",
        "LUM-THERMO-2",
        "Lumen Thermostat",
        Decimal("199.00"),
        ("mobile-app", "automations", "voice"),
        (
            "Switch off the heating at the breaker before you remove the old thermostat.",
            "Label the wires, mount the base plate and connect them to the matching terminals.",
            "Clip the display on, restore power and pick your language.",
            "In the Lumen app tap Add device > Thermostat and scan the code on the display.",
            "Run the 10-minute heating calibration so schedules learn how fast your home warms.",
        ),
    ),
    CatalogProduct(
        "indoor_camera",
        "LUM-CAM-IN",
        "Lumen Indoor Camera",
        Decimal("89.00"),
        ("camera-cloud", "mobile-app", "alerts"),
        (
            "Plug the camera in and wait for the light to blink blue.",
            "In the Lumen app tap Add device > Camera and scan the QR code on its base.",
            "Join your 2.4 GHz Wi-Fi network; 5 GHz is not supported.",
            "Set motion zones so the hallway, not the street, triggers alerts.",
        ),
    ),
    CatalogProduct(
        "outdoor_camera",
        "LUM-CAM-OUT",
        "Lumen Outdoor Camera",
        Decimal("149.00"),
        ("camera-cloud", "mobile-app", "alerts"),
        (
            "Charge the battery fully (about 4 hours) before mounting.",
            "Add the camera in the Lumen app while it is still indoors, near the router.",
            "Mount it 2-3 m high, angled slightly down, within Wi-Fi range.",
            "Turn on person detection so passing cars do not trigger alerts.",
        ),
    ),
    CatalogProduct(
        "doorbell",
        "LUM-BELL",
        "Lumen Video Doorbell",
        Decimal("129.00"),
        ("camera-cloud", "mobile-app", "alerts"),
        (
            "Switch off power to the existing chime at the breaker.",
            "Connect the two doorbell wires to the back terminals; polarity does not matter.",
            "Restore power; the ring light turns white when the doorbell is ready.",
            "In the Lumen app tap Add device > Doorbell and follow the chime pairing step.",
        ),
    ),
    CatalogProduct(
        "smart_plug",
        "LUM-PLUG",
        "Lumen Smart Plug",
        Decimal("24.00"),
        ("mobile-app", "automations", "voice"),
        (
            "Plug it in; the LED blinks green when it is ready to pair.",
            "In the Lumen app tap Add device > Plug.",
            "Name it after what it powers, so voice commands sound natural.",
        ),
    ),
    CatalogProduct(
        "smart_bulb",
        "LUM-BULB",
        "Lumen Smart Bulb",
        Decimal("19.00"),
        ("mobile-app", "automations", "voice"),
        (
            "Screw the bulb in and switch the light on at the wall.",
            "In the Lumen app tap Add device > Bulb; the bulb flashes when found.",
            "Leave the wall switch on from now on, so the app can reach the bulb.",
        ),
    ),
    CatalogProduct(
        "hub",
        "LUM-HUB",
        "Lumen Hub",
        Decimal("99.00"),
        ("mobile-app", "automations", "alerts"),
        (
            "Connect the hub to your router with the included Ethernet cable.",
            "Plug in the power adapter and wait for the ring to glow steady blue.",
            "In the Lumen app tap Add device > Hub and scan the code underneath.",
            "Add sensors and locks afterwards: they pair through the hub.",
        ),
    ),
    CatalogProduct(
        "smart_lock",
        "LUM-LOCK",
        "Lumen Smart Lock",
        Decimal("229.00"),
        ("mobile-app", "automations", "alerts"),
        (
            "Set up the Lumen Hub first; the lock pairs through it.",
            "Fit the mounting plate over your existing cylinder with the adapter that fits.",
            "Insert the batteries and attach the lock; it calibrates with a full turn.",
            "In the Lumen app tap Add device > Lock and create codes for each household member.",
        ),
    ),
    CatalogProduct(
        "motion_sensor",
        "LUM-MOTION",
        "Lumen Motion Sensor",
        Decimal("34.00"),
        ("mobile-app", "automations", "alerts"),
        (
            "Pull the battery tab; the sensor blinks to show it is looking for the hub.",
            "In the Lumen app tap Add device > Sensor.",
            "Mount it in a corner about 2 m high, away from radiators.",
        ),
    ),
    CatalogProduct(
        "smoke_alarm",
        "LUM-SMOKE",
        "Lumen Smoke Alarm",
        Decimal("79.00"),
        ("mobile-app", "alerts"),
        (
            "Mount it on the ceiling at least 50 cm from walls and lights.",
            "Pull the battery tab and press test: it sounds once and speaks its status.",
            "In the Lumen app tap Add device > Smoke alarm so alerts reach your phone.",
        ),
    ),
)

PRODUCTS_BY_SLUG: dict[str, CatalogProduct] = {p.slug: p for p in PRODUCTS}

PLAN_PRICES: dict[str, Decimal] = {
    "basic": Decimal("3.99"),
    "plus": Decimal("7.99"),
    "premium": Decimal("12.99"),
}
