"""The receive pipeline's transactional core: dedupe, contact, thread, persist.

Everything here is a synchronous function of a ``Transaction``: the Hub runs one call of
``ingest`` per webhook (every item of a batch) inside one store transaction, and publishes
the returned events only after the store committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ._capabilities import Capabilities
from ._channel import (
    Inbound,
    InboundDeletion,
    InboundDelivery,
    InboundHealth,
    InboundMessage,
    InboundOptChange,
    InboundReaction,
    InboundTyping,
)
from ._models import (
    AdapterHealth,
    Author,
    AuthorKind,
    Contact,
    ContactLink,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    DeliveryUpdated,
    Direction,
    Event,
    Handle,
    LinkStrength,
    Message,
    MessageDeleted,
    MessageReceived,
    OptChanged,
    ReactionReceived,
    StaleDeliveryUpdate,
    ThreadDecision,
    ThreadLink,
    ThreadRef,
    Typing,
    can_advance,
    new_id,
    text_of,
)
from ._store._base import StatusRecord, Transaction


@dataclass(frozen=True)
class ThreadingSettings:
    """How inbound messages find their conversation when no thread or reference decides."""

    continuity_window: timedelta = timedelta(hours=24)
    """A contact's message on a new thread joins their open conversation active this recently."""
    subject_window: timedelta = timedelta(days=14)
    """Same-subject messages from the same contact join within this window (a weak link)."""


@dataclass
class IngestReport:
    """What one ingest did: messages stored, duplicates skipped, events to publish."""

    stored: list[Message] = field(default_factory=list)
    duplicates: int = 0
    events: list[Event] = field(default_factory=list)
    conversation_ids: list[str] = field(default_factory=list)
    """For every InboundMessage item, in order: the conversation it is (or was already) in."""


def provider_lock_key(channel: str, account: str, provider_id: str) -> str:
    """The lock both a receipt and the send result it belongs to take, in either order."""
    return f"provider:{channel}:{account}:{provider_id}"


def _pending_status_key(channel: str, account: str, provider_id: str) -> str:
    return f"omnilink.pending_status:{channel}:{account}:{provider_id}"


def ingest(
    tx: Transaction,
    channel: str,
    capabilities: Capabilities,
    items: Sequence[Inbound],
    settings: ThreadingSettings,
    now: datetime,
) -> IngestReport:
    """Dedupe, resolve contacts, thread and store every item; return what to publish."""
    report = IngestReport()
    # Take every lock this batch needs up front, in one global order: two workers ingesting
    # overlapping, differently ordered batches then queue instead of deadlocking. (A store
    # whose transaction excludes every other writer has no per-key locks to take.)
    if not tx.exclusive:
        for key in sorted(_batch_lock_keys(channel, items)):
            tx.lock_key(key)
    for item in items:
        if isinstance(item, InboundMessage):
            _ingest_message(tx, channel, capabilities, item, settings, now, report)
        elif isinstance(item, InboundDelivery):
            _ingest_delivery(tx, channel, item, report)
        elif isinstance(item, InboundOptChange):
            tx.set_opt_out(channel, item.account, item.address, item.opted_out, now, item.keyword)
            owner = tx.contact_by_handle(Handle(channel=channel, address=item.address))
            report.events.append(
                OptChanged(
                    channel=channel,
                    account=item.account,
                    address=item.address,
                    opted_out=item.opted_out,
                    keyword=item.keyword,
                    contact_id=owner.id if owner else None,
                )
            )
        elif isinstance(item, InboundTyping):
            report.events.append(
                Typing(channel=channel, account=item.account, thread_key=item.thread_key, on=item.on)
            )
        elif isinstance(item, InboundReaction):
            target = tx.message_by_provider_id(channel, item.account, item.provider_message_id)
            owner = tx.contact_by_handle(Handle(channel=channel, address=item.sender))
            report.events.append(
                ReactionReceived(
                    channel=channel,
                    message_id=target.id if target else None,
                    provider_message_id=item.provider_message_id,
                    reaction=item.reaction,
                    contact_id=owner.id if owner else None,
                )
            )
        elif isinstance(item, InboundDeletion):
            _ingest_deletion(tx, channel, item, report)
        elif isinstance(item, InboundHealth):
            report.events.append(
                AdapterHealth(
                    channel=channel, account=item.account, state=item.state, detail=item.detail, at=now
                )
            )
    return report


def locked_conversation(tx: Transaction, conversation_id: str) -> Conversation | None:
    """Read a conversation to change it: locked first, so concurrent writers cannot lose an update."""
    tx.lock_key(f"conversation:{conversation_id}")
    return tx.get_conversation(conversation_id)


def locked_message(tx: Transaction, message_id: str) -> Message | None:
    """Read a message to change it, locked first (see ``locked_conversation``)."""
    tx.lock_key(f"message:{message_id}")
    return tx.get_message(message_id)


def _inbound_lock_key(channel: str, account: str, provider_id: str) -> str:
    return f"inbound:{channel}:{account}:{provider_id}"


def _handle_lock_key(channel: str, address: str) -> str:
    return f"handle:{channel}:{address}"


def _batch_lock_keys(channel: str, items: Sequence[Inbound]) -> set[str]:
    keys: set[str] = set()
    for item in items:
        if isinstance(item, InboundMessage):
            keys.add(_inbound_lock_key(channel, item.account, item.provider_message_id))
            customer = item.sender if not item.echo or item.sender != item.account else item.thread_key
            keys.add(_handle_lock_key(channel, customer))
            keys.update(_handle_lock_key(h.channel, h.address) for h in item.verified_handles)
        elif isinstance(item, InboundDelivery) and item.provider_message_id:
            keys.add(provider_lock_key(channel, item.account, item.provider_message_id))
        elif isinstance(item, InboundDeletion):
            keys.add(_inbound_lock_key(channel, item.account, item.provider_message_id))
            keys.add(provider_lock_key(channel, item.account, item.provider_message_id))
    return keys


# --------------------------------------------------------------------------- contacts


def resolve_contact(tx: Transaction, handle: Handle, display_name: str | None) -> Contact:
    """The contact owning ``handle``, created when new; unique by the store's handle key."""
    tx.lock_key(_handle_lock_key(handle.channel, handle.address))
    contact = tx.contact_by_handle(handle)
    if contact is None:
        fresh = Contact(display_name=display_name)
        tx.insert_contact(fresh)
        owner = tx.claim_handle(handle, fresh.id)
        contact = tx.get_contact(owner)
        assert contact is not None
    elif display_name and not contact.display_name:
        contact = contact.model_copy(update={"display_name": display_name})
        tx.update_contact(contact)
    return contact


def linked_contact_ids(tx: Transaction, contact_id: str) -> list[str]:
    """The contact and every contact joined to it by applied, not undone links (transitively)."""
    seen = [contact_id]
    frontier = [contact_id]
    while frontier:
        current = frontier.pop()
        for link in tx.links_of(current):
            if not link.applied or link.undone_at is not None:
                continue
            other = link.other_contact_id if link.contact_id == current else link.contact_id
            if other not in seen:
                seen.append(other)
                frontier.append(other)
    return seen


def link_contacts(
    tx: Transaction,
    contact_id: str,
    other_id: str,
    *,
    reason: str,
    evidence: dict[str, str],
    strength: LinkStrength,
    now: datetime,
) -> ContactLink | None:
    """Record that two contacts are one person; applied only on strong evidence.

    Returns None when they are already joined by an applied link.
    """
    if contact_id == other_id or other_id in linked_contact_ids(tx, contact_id):
        return None
    link = ContactLink(
        contact_id=contact_id,
        other_contact_id=other_id,
        reason=reason,
        evidence=evidence,
        strength=strength,
        applied=strength is LinkStrength.STRONG,
        created_at=now,
    )
    tx.insert_link(link)
    return link


def _apply_verified_handles(
    tx: Transaction, channel: str, contact: Contact, item: InboundMessage, now: datetime
) -> None:
    for handle in item.verified_handles:
        owner = tx.contact_by_handle(handle)
        if owner is None:
            tx.claim_handle(handle, contact.id)
        elif owner.id != contact.id:
            link_contacts(
                tx,
                contact.id,
                owner.id,
                reason=f"{channel}.verified_identity",
                evidence={"channel": handle.channel, "address": handle.address},
                strength=LinkStrength.STRONG,
                now=now,
            )


# --------------------------------------------------------------------------- threading


def choose_conversation(
    tx: Transaction,
    channel: str,
    capabilities: Capabilities,
    item: InboundMessage,
    contact_id: str,
    settings: ThreadingSettings,
    now: datetime,
    ref: ThreadRef,
) -> tuple[Conversation | None, ThreadDecision]:
    """Find the conversation an inbound message belongs to, and the rule that decided.

    Rules, first match wins: a conversation token only we issue; a reference to a stored
    message; the thread key (channels that thread by key); the same base subject from the
    same contact within the subject window (weak); the contact's open conversation on another
    thread within the continuity window; otherwise a new conversation. ``ref`` is the item's
    thread.
    """
    if item.conversation_hint:
        hinted = tx.get_conversation(item.conversation_hint)
        if hinted is not None:
            return hinted, ThreadDecision(rule="token", detail=f"reply token for {hinted.id}")
    for provider_id in (*reversed(item.references), item.reply_to_provider_id):
        if not provider_id:
            continue
        earlier = tx.message_by_provider_id(channel, item.account, provider_id)
        if earlier is not None:
            found = tx.get_conversation(earlier.conversation_id)
            if found is not None:
                return found, ThreadDecision(rule="reference", detail=f"refers to {provider_id}")
    if capabilities.thread_by_key:
        by_thread = tx.conversation_for_thread(ref)
        if by_thread is not None:
            return by_thread, ThreadDecision(rule="thread_ref", detail=f"{channel} thread {item.thread_key}")
    # The contact and every contact joined to it (looked up only when a rule needs them).
    contact_ids = linked_contact_ids(tx, contact_id)
    if item.subject_key:
        for candidate in tx.recent_conversations(contact_ids, now - settings.subject_window):
            if candidate.subject_key == item.subject_key and candidate.thread_for(channel) is not None:
                return candidate, ThreadDecision(
                    rule="subject",
                    detail=f"same subject {item.subject_key!r} from the same contact",
                    strength=LinkStrength.WEAK,
                )
    for candidate in tx.recent_conversations(contact_ids, now - settings.continuity_window):
        if candidate.status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
            continue
        if ref not in candidate.threads:
            via = candidate.last_channel or "another thread"
            return candidate, ThreadDecision(
                rule="continuity_window",
                detail=f"contact's open conversation on {via} within {settings.continuity_window}",
            )
        if not _has_inbound(tx, candidate.id, ref):
            # The business opened this thread (continue_on, start_conversation): the customer's
            # first message on it answers that conversation.
            return candidate, ThreadDecision(
                rule="continue_on", detail=f"first customer message on {channel}"
            )
    return None, ThreadDecision(rule="new_conversation", detail="no earlier conversation matched")


def _has_inbound(tx: Transaction, conversation_id: str, ref: ThreadRef) -> bool:
    return any(
        m.direction is Direction.INBOUND and m.conversation_id == conversation_id
        for m in tx.thread_messages(ref.channel, ref.account, ref.key, 100)
    )


def add_thread(
    conversation: Conversation, ref: ThreadRef, rule: str, detail: str, now: datetime
) -> Conversation:
    """The conversation with ``ref`` among its threads (recording why), unchanged if present."""
    if ref in conversation.threads:
        return conversation
    return conversation.model_copy(
        update={
            "threads": (*conversation.threads, ref),
            "thread_links": (
                *conversation.thread_links,
                ThreadLink(ref=ref, rule=rule, detail=detail, linked_at=now),
            ),
        }
    )


def _ingest_message(
    tx: Transaction,
    channel: str,
    capabilities: Capabilities,
    item: InboundMessage,
    settings: ThreadingSettings,
    now: datetime,
    report: IngestReport,
) -> None:
    message_id = new_id("msg")
    if not tx.claim_inbound(channel, item.account, item.provider_message_id, message_id):
        report.duplicates += 1
        existing = tx.message_by_provider_id(channel, item.account, item.provider_message_id)
        report.conversation_ids.append(existing.conversation_id if existing else "")
        return
    if item.echo:
        _ingest_echo(tx, channel, capabilities, item, settings, now, report, message_id)
        return
    contact = resolve_contact(tx, Handle(channel=channel, address=item.sender), item.sender_name)
    _apply_verified_handles(tx, channel, contact, item, now)
    tx.lock_key(f"contact:{contact.id}")
    ref = ThreadRef(channel=channel, account=item.account, key=item.thread_key)
    conversation, decision = choose_conversation(
        tx, channel, capabilities, item, contact.id, settings, now, ref
    )
    if conversation is not None and not tx.exclusive:
        conversation = locked_conversation(tx, conversation.id) or conversation
    new_conversation = conversation is None
    if conversation is None:
        conversation = Conversation(
            contact_id=contact.id,
            subject=item.subject,
            subject_key=item.subject_key,
            created_at=now,
            updated_at=now,
        )
    threads_changed = new_conversation or ref not in conversation.threads
    if threads_changed:
        conversation = add_thread(conversation, ref, decision.rule, decision.detail, now)
    message = _stored_message(
        item,
        channel,
        message_id=message_id,
        conversation_id=conversation.id,
        contact_id=contact.id,
        direction=Direction.INBOUND,
        author=Author(kind=AuthorKind.CONTACT, id=contact.id, name=item.sender_name),
        status=DeliveryStatus.RECEIVED,
        decision=decision,
        reply_to_id=_local_id(tx, channel, item.account, item.reply_to_provider_id),
        now=now,
    )
    tx.insert_message(message)  # indexes its provider ids
    update: dict[str, object] = {"updated_at": now, "last_channel": channel, "last_thread": ref}
    if not item.automatic:
        update["first_inbound_at"] = conversation.first_inbound_at or item.sent_at
        update["last_inbound_at"] = max(conversation.last_inbound_at or item.sent_at, item.sent_at)
        if conversation.status is not ConversationStatus.OPEN:
            update["status"] = ConversationStatus.OPEN
    if conversation.subject is None and item.subject:
        update["subject"] = item.subject
        update["subject_key"] = item.subject_key
    conversation = conversation.model_copy(update=update)
    tx.save_conversation(conversation, threads_changed=threads_changed)
    report.stored.append(message)
    report.conversation_ids.append(conversation.id)
    report.events.append(
        MessageReceived(message=message, conversation=conversation, new_conversation=new_conversation)
    )


def _stored_message(
    item: InboundMessage,
    channel: str,
    *,
    message_id: str,
    conversation_id: str,
    contact_id: str,
    direction: Direction,
    author: Author,
    status: DeliveryStatus,
    decision: ThreadDecision,
    reply_to_id: str | None,
    now: datetime,
) -> Message:
    """The Message an inbound item becomes (a customer's message, or the business's echo)."""
    return Message(
        id=message_id,
        conversation_id=conversation_id,
        contact_id=contact_id,
        direction=direction,
        channel=channel,
        account=item.account,
        thread_key=item.thread_key,
        author=author,
        parts=item.parts,
        subject=item.subject,
        provider_message_id=item.provider_message_id,
        provider_ids=(item.provider_message_id,),
        reply_to_id=reply_to_id,
        status=status,
        status_updated_at=now,
        threading=decision,
        automatic=item.automatic,
        sent_at=item.sent_at,
        raw=item.raw,
    )


def _local_id(tx: Transaction, channel: str, account: str, provider_id: str | None) -> str | None:
    if not provider_id:
        return None
    found = tx.message_by_provider_id(channel, account, provider_id)
    return found.id if found else None


def _unsettled_send_with_text(tx: Transaction, channel: str, item: InboundMessage) -> Message | None:
    """An echo that outran its send's result: our queued send on this thread with that text.

    Providers that cannot carry our message id (X's DMs) echo a send before the dispatcher
    has stored the provider's id; matching the text of a send still in flight keeps the echo
    from becoming a second, foreign message.
    """
    text = text_of(item.parts).strip()
    if not text:
        return None
    for message in reversed(tx.thread_messages(channel, item.account, item.thread_key, 20)):
        if (
            message.direction is Direction.OUTBOUND
            and message.status in (DeliveryStatus.QUEUED, DeliveryStatus.UNKNOWN)
            and text in message.text
        ):
            return message
    return None


def _ingest_echo(
    tx: Transaction,
    channel: str,
    capabilities: Capabilities,
    item: InboundMessage,
    settings: ThreadingSettings,
    now: datetime,
    report: IngestReport,
    message_id: str,
) -> None:
    """A message the business account sent: ours (match it) or another tool's (store it)."""
    ours = tx.get_message(item.echo_of) if item.echo_of else None
    if ours is None:
        ours = tx.message_by_provider_id(channel, item.account, item.provider_message_id)
    if ours is None:
        ours = _unsettled_send_with_text(tx, channel, item)
    if ours is not None and ours.direction is Direction.OUTBOUND:
        ours = locked_message(tx, ours.id) or ours
        if item.provider_message_id not in ours.provider_ids:
            ours = ours.model_copy(
                update={
                    "provider_ids": (*ours.provider_ids, item.provider_message_id),
                    "provider_message_id": ours.provider_message_id or item.provider_message_id,
                }
            )
            tx.update_message(ours)  # indexes the new provider id
        _apply_status(tx, ours, DeliveryStatus.SENT, now, None, report, quiet=True)
        report.conversation_ids.append(ours.conversation_id)
        return
    ref = ThreadRef(channel=channel, account=item.account, key=item.thread_key)
    conversation = tx.conversation_for_thread(ref)
    if conversation is not None:
        conversation = locked_conversation(tx, conversation.id) or conversation
    customer = item.sender if item.sender != item.account else item.thread_key
    contact = (
        tx.get_contact(conversation.contact_id)
        if conversation is not None
        else resolve_contact(tx, Handle(channel=channel, address=customer), None)
    )
    assert contact is not None
    decision = ThreadDecision(rule="thread_ref", detail=f"sent from the {channel} account by another tool")
    if conversation is None:
        conversation = Conversation(contact_id=contact.id, created_at=now, updated_at=now)
        decision = ThreadDecision(rule="new_conversation", detail="business-initiated, from another tool")
    conversation = add_thread(conversation, ref, decision.rule, decision.detail, now)
    message = _stored_message(
        item,
        channel,
        message_id=message_id,
        conversation_id=conversation.id,
        contact_id=contact.id,
        direction=Direction.OUTBOUND,
        author=Author(kind=AuthorKind.BUSINESS, name=item.sender_name),
        status=DeliveryStatus.SENT,
        decision=decision,
        reply_to_id=None,
        now=now,
    )
    tx.insert_message(message)  # indexes its provider ids
    conversation = conversation.model_copy(
        update={
            "updated_at": now,
            "last_outbound_at": max(conversation.last_outbound_at or item.sent_at, item.sent_at),
        }
    )
    tx.save_conversation(conversation)
    report.stored.append(message)
    report.conversation_ids.append(conversation.id)


# --------------------------------------------------------------------------- delivery


def _apply_status(
    tx: Transaction,
    message: Message,
    status: DeliveryStatus,
    at: datetime,
    error: str | None,
    report: IngestReport,
    *,
    quiet: bool = False,
) -> Message:
    """Move ``message`` to ``status`` if that is forward; record the update either way."""
    if not tx.exclusive:
        message = locked_message(tx, message.id) or message
    if message.direction is not Direction.OUTBOUND or message.status == status:
        return message
    applied = can_advance(message.status, status)
    tx.record_status(StatusRecord(message_id=message.id, status=status, at=at, applied=applied, error=error))
    if not applied:
        if not quiet:
            report.events.append(
                StaleDeliveryUpdate(
                    message_id=message.id,
                    channel=message.channel,
                    current=message.status,
                    ignored=status,
                    at=at,
                )
            )
        return message
    updated = message.model_copy(
        update={"status": status, "status_updated_at": at, "error": error or message.error}
    )
    tx.update_message(updated)
    report.events.append(
        DeliveryUpdated(
            message_id=message.id,
            conversation_id=message.conversation_id,
            channel=message.channel,
            status=status,
            previous=message.status,
            error=error,
            at=at,
        )
    )
    return updated


def apply_status(
    tx: Transaction, message: Message, status: DeliveryStatus, at: datetime, error: str | None = None
) -> tuple[Message, list[Event]]:
    """Public form of the forward-only transition, for the dispatcher and tools."""
    report = IngestReport()
    updated = _apply_status(tx, message, status, at, error, report)
    return updated, report.events


def _ingest_delivery(tx: Transaction, channel: str, item: InboundDelivery, report: IngestReport) -> None:
    if item.provider_message_id:
        # Serialises with the dispatcher recording this id (see take_pending_status).
        tx.lock_key(provider_lock_key(channel, item.account, item.provider_message_id))
        message = tx.message_by_provider_id(channel, item.account, item.provider_message_id)
        if message is None:
            # The receipt outran the dispatcher's commit of the send result: keep it for later.
            key = _pending_status_key(channel, item.account, item.provider_message_id)
            tx.set_state(key, f"{item.status.value}|{item.at.isoformat()}|{item.error or ''}")
            return
        _apply_status(tx, message, item.status, item.at, item.error, report)
    if item.thread_key and item.watermark:
        for message in tx.outbound_up_to(channel, item.account, item.thread_key, item.watermark):
            _apply_status(tx, message, item.status, item.at, item.error, report, quiet=True)


DELETED_CLAIM = "deleted"
"""The message id a deletion claims an inbound key with when its message is not stored yet."""


def _ingest_deletion(tx: Transaction, channel: str, item: InboundDeletion, report: IngestReport) -> None:
    # Locks as in ingest (inbound key) and in the dispatcher's record (provider key).
    tx.lock_key(_inbound_lock_key(channel, item.account, item.provider_message_id))
    tx.lock_key(provider_lock_key(channel, item.account, item.provider_message_id))
    message = tx.message_by_provider_id(channel, item.account, item.provider_message_id)
    if message is None:
        # The deletion outran its message (or the message was never stored): claim the dedupe
        # key, so the message, when it arrives, counts as already handled and is never stored.
        tx.claim_inbound(channel, item.account, item.provider_message_id, DELETED_CLAIM)
        return
    if not tx.exclusive:
        message = locked_message(tx, message.id) or message
    if message.deleted_at is not None:
        return  # a redelivered deletion
    tombstone = message.model_copy(
        update={"parts": (), "raw": None, "subject": None, "reaction": None, "deleted_at": item.at}
    )
    tx.update_message(tombstone)
    report.events.append(
        MessageDeleted(
            message_id=message.id,
            conversation_id=message.conversation_id,
            channel=channel,
            provider_message_id=item.provider_message_id,
            at=item.at,
        )
    )


def take_pending_status(
    tx: Transaction, channel: str, account: str, provider_id: str
) -> tuple[DeliveryStatus, datetime, str | None] | None:
    """A receipt that arrived before its send was recorded, if any (consumed)."""
    key = _pending_status_key(channel, account, provider_id)
    value = tx.get_state(key)
    if not value:
        return None
    tx.set_state(key, "")  # consumed (an empty value means absent)
    status, at, error = value.split("|", 2)
    return DeliveryStatus(status), datetime.fromisoformat(at), error or None
