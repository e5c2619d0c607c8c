"""``starpromo payments``: refund a purchase through Telegram (and revoke its promo redemption), compare the books
with Telegram, work through the review items that reconciliation and recovery leave for a human (SPEC 10, issue 10).
Every change is audited as ``cli:<login name>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from domain.errors import ConfigurationError
from domain.model import PaymentReview, Purchase
from domain.payment_jobs import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from domain.payment_reviews import MAX_REVIEW_PAGE
from domain.policy import PromoPolicy
from domain.reconciliation import ReconciliationReport
from entrypoints.cli._ops import EXIT_FAILURE, cli_actor, cli_errors, echo_json, get_container, json_value, table

if TYPE_CHECKING:
    from entrypoints.container import Container

# `payments reconcile`: books differ (like diff(1): 0 same, 1 different, 2 trouble).
EXIT_DIFFERENCES = EXIT_FAILURE


def register(cli: click.Group) -> None:
    cli.add_command(payments)


@click.group()
def payments() -> None:
    """Refunds, reconciliation with Telegram Star transactions, and payment review items."""


def _require_gateway(container: Container) -> None:
    if not container.payment_gateway.is_defined:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set: refunds and reconciliation need the Telegram "
                                 "Bot API (set TELEGRAM_BOT_TOKEN, and TELEGRAM_API_URL for a local Bot API)")


def _purchase_json(purchase: Purchase) -> dict[str, Any]:
    from entrypoints.http.schemas import purchase_json

    return {k: json_value(v) for k, v in purchase_json(purchase).items()}


@payments.command()
@click.argument("purchase_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--json", "as_json", is_flag=True, help="Print the purchase as JSON (as the internal API does).")
@click.pass_context
def refund(ctx: click.Context, purchase_id: int, as_json: bool) -> None:
    """Refund PURCHASE_ID through Telegram (refundStarPayment) and mark it REFUNDED.

    Idempotent: a purchase already REFUNDED is shown as it is. Only PAID purchases can be refunded.
    The refund rollback job then revokes its promo redemption."""
    with cli_errors():
        container = get_container(ctx)
        _require_gateway(container)
        purchase = container.checkout_service().refund(purchase_id, container.payment_gateway(), actor=cli_actor())
    if as_json:
        echo_json(_purchase_json(purchase))
        return
    click.echo(f"purchase {purchase.id} {purchase.status.value}: {purchase.final_stars_amount} Stars to user "
               f"{purchase.user_id} ({purchase.product_code}), refunded at "
               f"{json_value(purchase.refunded_at) or '-'}")


@payments.command("refund-rollback")
@click.argument("purchase_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (as the internal API does).")
@click.pass_context
def refund_rollback(ctx: click.Context, purchase_id: int, as_json: bool) -> None:
    """Revoke the promo redemption of refunded purchase PURCHASE_ID now, instead of waiting for the
    run_refund_promo_rollback job (POST /internal/promo/refund-rollback). A repeat is a replay."""
    with cli_errors():
        result = get_container(ctx).maintenance_service().rollback_refund(purchase_id, actor=cli_actor())
    if as_json:
        echo_json(result.as_dict())
        return
    replay = " (already done before)" if result.replayed else ""
    click.echo(f"purchase {result.purchase_id}: promo redemption {result.redemption_id} is "
               f"{result.status.value}{replay}")


def stars_text(stars: int, nanostars: int) -> str:
    """An exact Star amount: whole Stars, and the billionths when there are any (``0.1``, ``5000``)."""
    return f"{stars}.{nanostars:09d}".rstrip("0") if nanostars else str(stars)


def movement_lines(doc: dict[str, Any]) -> list[str]:
    """``other_movements`` (reconcile output, dashboard): one line per kind and direction."""
    if not doc["count"]:
        return ["  other Star movements: none (withdrawals, ads, gifts, ... never compared with purchases)"]
    lines = [f"  other Star movements: {doc['count']} (never compared with purchases, never alerted)"]
    lines += [f"    {k['kind']:<26} {k['direction']:<9} {k['count']:>7}   "
              f"{stars_text(k['stars'], k['nanostar_amount'])} Stars" for k in doc["kinds"]]
    return lines


# Differences listed per kind in the text output (``--json`` has every one).
MAX_LISTED_PER_KIND = 20


def render_report(report: ReconciliationReport) -> str:
    """The comparison as a readable summary: both sides, per product, the other Star movements, then the
    differences (at most ``MAX_LISTED_PER_KIND`` listed per kind)."""
    doc = report.to_document()
    w, f = doc["window"], doc["figures"]
    lines = [f"window      {w['from']} .. {w['to']} ({w['hours']} h; settled before {w['settled_before']})",
             f"read        {doc['transactions_read']} Telegram transactions in {doc['pages']} page(s)", ""]
    rows = []
    for side in ("payments", "refunds"):
        tg, local = f["telegram"][side], f["local"][side]
        rows.append([side, str(tg["count"]), str(tg["stars"]), str(local["count"]), str(local["stars"]),
                     f"{tg['count'] - local['count']:+d}", f"{tg['stars'] - local['stars']:+d}"])
    lines.append(table(["", "telegram", "stars", "local", "stars", "count drift", "stars drift"], rows))
    lines.append("")
    products = [[code, str(v["telegram_stars"]), str(v["local_stars"]), f"{v['drift']:+d}"]
                for code, v in f["products"].items()]
    lines.append(table(["product", "telegram stars", "local stars", "drift"], products) if products
                 else "no payments in the window")
    lines.append("")
    lines += movement_lines(f["other_movements"])
    lines.append("")
    if report.matches:
        lines.append("books match: no differences")
        return "\n".join(lines)
    by_kind = doc["differences_by_kind"]
    lines.append(f"{len(report.differences)} difference(s): "
                 + ", ".join(f"{kind} {count}" for kind, count in by_kind.items()))
    listed: dict[str, int] = {}
    for d in report.differences:
        listed[d.kind.value] = listed.get(d.kind.value, 0) + 1
        if listed[d.kind.value] > MAX_LISTED_PER_KIND:
            continue
        ref = ", ".join(p for p in (f"purchase {d.purchase_id}" if d.purchase_id is not None else "",
                                    f"charge {d.charge_id}" if d.charge_id else "") if p)
        lines.append(f"  {d.kind.value:<28} {d.summary}" + (f" [{ref}]" if ref else ""))
    for kind, count in by_kind.items():
        if count > MAX_LISTED_PER_KIND:
            lines.append(f"  {kind:<28} ... and {count - MAX_LISTED_PER_KIND} more (--json lists every one)")
    return "\n".join(lines)


@payments.command()
@click.option("--window-hours", type=click.IntRange(MIN_WINDOW_HOURS, MAX_WINDOW_HOURS), default=None,
              help=f"Trailing window in hours ({MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}); "
                   f"default PAYMENTS_RECONCILIATION_WINDOW_HOURS ({PromoPolicy().reconciliation_window_hours}).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole comparison as JSON.")
@click.pass_context
def reconcile(ctx: click.Context, window_hours: int | None, as_json: bool) -> None:
    """Compare local purchases with Telegram's Star transactions over the trailing window and print it.

    Only purchase payments and their refunds are compared; every other Star movement (withdrawals, ads, paid
    broadcasts, gifts, affiliate commissions, paid media, subscriptions) is listed apart as other_movements.
    Read-only: nothing is marked, recorded or alerted (the run_payments_reconciliation job does that).
    Exit 0 when the books match, 1 when there are differences."""
    with cli_errors():
        container = get_container(ctx)
        _require_gateway(container)
        report = container.reconciliation_service().reconcile(window_hours, act=False)
    if as_json:
        echo_json(report.to_document())
    else:
        click.echo(render_report(report))
    if not report.matches:
        raise click.exceptions.Exit(EXIT_DIFFERENCES)


def _review_json(r: PaymentReview) -> dict[str, Any]:
    return {"id": r.id, "event": r.event, "kind": r.kind, "purchase_id": r.purchase_id,
            "telegram_payment_charge_id": r.telegram_payment_charge_id, "created_at": json_value(r.created_at),
            "resolved_at": json_value(r.resolved_at), "resolution_note": r.resolution_note, "details": r.details,
            "dedup_key": r.dedup_key}


def _what(r: PaymentReview) -> str:
    d = r.details
    figures = [f"{k} {d[k]}" for k in ("telegram_stars", "local_stars", "expected_stars", "drift", "product_code",
                                       "user_id") if d.get(k) is not None]
    return ", ".join(figures)


@payments.command()
@click.option("--all", "show_all", is_flag=True, help="Include resolved items.")
@click.option("--limit", type=click.IntRange(1, MAX_REVIEW_PAGE), default=50, show_default=True)
@click.option("--after-id", type=click.IntRange(0, 2**63 - 1), default=None, help="Page: items after this id.")
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON (with every figure).")
@click.pass_context
def reviews(ctx: click.Context, show_all: bool, limit: int, after_id: int | None, as_json: bool) -> None:
    """Open payment review items: reconciliation differences and payments recovery could not settle safely."""
    with cli_errors():
        items = get_container(ctx).payment_review_service().list(not show_all, limit, after_id)
    if as_json:
        echo_json([_review_json(r) for r in items])
        return
    if not items:
        click.echo("no open review items" if not show_all else "no review items")
        return
    rows = [[str(r.id), json_value(r.created_at), r.kind, str(r.purchase_id or "-"),
             r.telegram_payment_charge_id or "-", "open" if r.is_open else "resolved", _what(r)] for r in items]
    click.echo(table(["id", "created_at", "kind", "purchase", "charge", "state", "figures"], rows))


@payments.command()
@click.argument("review_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--note", default=None, help="What was done (kept with the item, at most 500 characters).")
@click.pass_context
def resolve(ctx: click.Context, review_id: int, note: str | None) -> None:
    """Mark review item REVIEW_ID resolved (after a human dealt with it). The same difference is never
    raised again."""
    with cli_errors():
        done = get_container(ctx).payment_review_service().resolve(review_id, note, actor=cli_actor())
    click.echo(f"review {done.id} ({done.kind}) resolved at {json_value(done.resolved_at)}")
