"""Channels, membership, messages and the organization's directory. Every query is scoped
to the caller's organization, so another tenant's ids are simply not found."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.accounts import service as accounts
from neolith_orchestrator.chat import service as chat
from neolith_orchestrator.chat.schemas import channel_out, message_out, user_out
from neolith_orchestrator.errors import PermissionDenied
from neolith_orchestrator.http import inputs
from neolith_orchestrator.http.deps import context, principal


async def list_users(request: Request) -> Response:
    ctx, caller = context(request), await principal(request)
    async with ctx.database.transaction() as session:
        users = await accounts.list_users(session, caller.user.organization_id)
    return JSONResponse([user_out(u) for u in users])


async def list_channels(request: Request) -> Response:
    ctx, caller = context(request), await principal(request)
    async with ctx.database.transaction() as session:
        rows = await chat.list_channels(session, caller.user)
    return JSONResponse([channel_out(c, is_member=m) for c, m in rows])


async def create_channel(request: Request) -> Response:
    """Create a channel; the creator joins it (and so do the creator's sockets)."""
    ctx, caller = context(request), await principal(request)
    data = await inputs.body(request, inputs.ChannelIn)
    async with ctx.database.transaction() as session:
        channel = await chat.create_channel(session, caller.user, data.name, data.topic)
    await ctx.realtime.join_channel(caller.user.id, channel.id)
    return JSONResponse(channel_out(channel, is_member=True), status_code=201)


async def get_channel(request: Request) -> Response:
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    async with ctx.database.transaction() as session:
        channel = await chat.get_channel(session, caller.user.organization_id, channel_id)
        member = await chat.is_member(session, channel_id, caller.user.id)
    return JSONResponse(channel_out(channel, is_member=member))


async def list_members(request: Request) -> Response:
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    async with ctx.database.transaction() as session:
        users = await chat.list_members(session, caller.user.organization_id, channel_id)
    return JSONResponse([user_out(u) for u in users])


async def add_member(request: Request) -> Response:
    """Join a channel yourself, or add someone to a channel you are in (admins: any)."""
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    data = await inputs.body(request, inputs.MemberIn)
    org_id = caller.user.organization_id
    async with ctx.database.transaction() as session:
        await chat.get_channel(session, org_id, channel_id)
        adding_other = data.user_id != caller.user.id and not caller.user.is_admin
        if adding_other and not await chat.is_member(session, channel_id, caller.user.id):
            raise PermissionDenied("only members of a channel can add others to it")
        added = await chat.add_member(session, org_id, channel_id, data.user_id)
    await ctx.realtime.join_channel(data.user_id, channel_id)
    body = {"channel_id": str(channel_id), "user_id": str(data.user_id), "added": added}
    return JSONResponse(body, status_code=201 if added else 200)


async def remove_member(request: Request) -> Response:
    """Leave a channel yourself; admins may remove anyone."""
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    user_id = inputs.path_uuid(request, "user_id")
    if user_id != caller.user.id and not caller.user.is_admin:
        raise PermissionDenied("only admins can remove someone else from a channel")
    async with ctx.database.transaction() as session:
        removed = await chat.remove_member(
            session, caller.user.organization_id, channel_id, user_id
        )
    await ctx.realtime.leave_channel(user_id, channel_id)
    return JSONResponse(
        {"channel_id": str(channel_id), "user_id": str(user_id), "removed": removed}
    )


async def list_messages(request: Request) -> Response:
    """A page of messages, oldest first; `next_before` pages further back."""
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    limit = inputs.query_int(request, "limit", 50, low=1, high=200)
    before = inputs.query_uuid(request, "before")
    org_id = caller.user.organization_id
    async with ctx.database.transaction() as session:
        await chat.get_channel(session, org_id, channel_id)
        if not await chat.is_member(session, channel_id, caller.user.id):
            raise PermissionDenied("you are not a member of this channel")
        messages = await chat.list_messages(session, org_id, channel_id, before=before, limit=limit)
    items = [message_out(m) for m in messages]
    next_before = items[0]["id"] if len(items) == limit else None
    return JSONResponse({"items": items, "next_before": next_before})


async def post_message(request: Request) -> Response:
    """Post a message (mentions wake the orchestrators named in it): 201 when stored, 200
    with the stored message when its `client_id` was already posted (a re-send)."""
    ctx, caller = context(request), await principal(request)
    channel_id = inputs.path_uuid(request, "channel_id")
    data = await inputs.body(request, inputs.MessageIn)
    message, created = await ctx.manager.messenger.submit(
        caller.user,
        channel_id,
        data.content,
        reply_to_id=data.reply_to_id,
        client_id=data.client_id,
    )
    return JSONResponse(message, status_code=201 if created else 200)


routes = [
    Route("/api/users", list_users, methods=["GET"]),
    Route("/api/channels", list_channels, methods=["GET"]),
    Route("/api/channels", create_channel, methods=["POST"]),
    Route("/api/channels/{channel_id:uuid}", get_channel, methods=["GET"]),
    Route("/api/channels/{channel_id:uuid}/members", list_members, methods=["GET"]),
    Route("/api/channels/{channel_id:uuid}/members", add_member, methods=["POST"]),
    Route(
        "/api/channels/{channel_id:uuid}/members/{user_id:uuid}", remove_member, methods=["DELETE"]
    ),
    Route("/api/channels/{channel_id:uuid}/messages", list_messages, methods=["GET"]),
    Route("/api/channels/{channel_id:uuid}/messages", post_message, methods=["POST"]),
]
