"""Demo data for `kefu sandbox`: a few orders that fall due (recorded as reminders at once, so the
first tick delivers them), open handover items and a scheduled team meeting. The words come from
templates/ (labels and reminders/demo_orders.yaml). No Telegram here."""

from __future__ import annotations

import asyncio
import html
from datetime import timedelta
from decimal import Decimal

import yaml

from bot.broadcasts import Audience, Content, WhenWords, parse_when
from bot.orders import NormalizedOrder, upsert_orders
from bot.people import Person, Role
from bot.render import TEMPLATES_DIR
from bot.services import Services


async def seed(services: Services) -> None:
    """Every feature's demo data, in the order a new team would meet it."""
    await seed_reminders(services)
    await seed_broadcasts(services)
    await seed_handover(services)


async def seed_reminders(services: Services) -> None:
    """A few demo orders for `kefu sandbox`: two 催付, one warning, one breach, and two that must
    stay quiet (presale, refunding), recorded as reminders at once; the first tick delivers them
    to whoever is on duty."""
    path = TEMPLATES_DIR / "reminders" / "demo_orders.yaml"
    demo = yaml.safe_load(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    now = services.clock.now()
    orders = []
    for item in demo["orders"]:
        def ago(hours: float | None):
            return None if hours is None else now - timedelta(hours=hours)

        orders.append(NormalizedOrder(
            platform=item["platform"], order_no=str(item["order_no"]), shop=item["shop"], status=item["status"],
            status_raw=item["status_raw"], refunding=bool(item.get("refunding")), presale=bool(item.get("presale")),
            created_at=ago(item["created_hours_ago"]), paid_at=ago(item.get("paid_hours_ago")), shipped_at=None,
            amount=Decimal(str(item["amount"])), buyer=item["buyer"], item_title=item["item_title"],
            tracking_no="", carrier="",
        ))
    await upsert_orders(services.db, orders, clock=services.clock, source="demo", record=False)
    await services.reminders.scan()  # /reminders at once


async def seed_broadcasts(services: Services) -> None:
    """The sandbox's Monday 08:00 team meeting announcement, from the first supervisor."""
    supervisors = [p for p in await services.people.with_role(Role.SUPERVISOR) if p.role == Role.SUPERVISOR]
    author: Person | None = (supervisors or await services.people.with_role(Role.ADMIN) or [None])[0]
    if author is None:
        return
    demo = services.renderer.labels["broadcast"]["demo"]
    words = WhenWords.from_labels(services.renderer.labels["broadcast"]["when"])
    rule, _ = parse_when(demo["meeting_rule"], services.clock.now(), services.tz, words)
    await services.broadcasts.create_schedule(
        author, Content("text", html.escape(demo["meeting_text"], quote=False)), rule, demo["meeting_rule"],
        audience=Audience("all"), ack_required=True,
    )


async def seed_handover(services: Services) -> None:
    """`kefu sandbox`: a couple of open items from the demo agents (texts in the labels)."""
    ho = services.handover
    for demo in services.renderer.labels["handover"].get("demo", []):
        author = await services.people.find(str(demo["author"]))
        if author is not None:
            await ho.log_item(author.tg_id, author.shift, demo["text"], kind=demo.get("kind", "other"))
