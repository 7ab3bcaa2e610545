"""The war room through the official MCP Python SDK (issue 17), driven by tests/it/warroom_python.rs.

ChatGPT's side of the night: a Streamable HTTP session with a bearer token, announcing itself as
`chatgpt`. It acknowledges the P0 another assistant posted, subscribes to the channel's resource,
tells the test it is listening (a `subscribed` line on stdout) and waits for the test's `go` on
stdin, then waits for the server's `notifications/resources/updated`, reads the thread and prints
one `result` line with everything it saw. A second short session with the person's own token
(which names no assistant) posts once more, so the client name can only come from `clientInfo`.

Environment: MTTRLY_MCP_URL, MTTRLY_TOKEN (an assistant token), MTTRLY_PERSONAL_TOKEN (the same
person's own token). Every line on stdout is one JSON object with an `event`; diagnostics go to
stderr. Any failure raises, so the process exits non-zero.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import anyio
import httpx2
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

CLIENT_NAME = "chatgpt"
CHANNEL = "incidents"
THREAD = "incident-2024-01-12-001"
CHANNEL_URI = f"notification://{CHANNEL}/recent"
# The whole script, and the wait for the push, are bounded: the test must fail, not hang.
OVERALL_SECONDS = 90
UPDATE_SECONDS = 20


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def log(message: str) -> None:
    print(f"warroom_client: {message}", file=sys.stderr, flush=True)


def http_client(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30, read=300),
    )


def structured(result: types.CallToolResult, tool: str) -> dict[str, Any]:
    if result.structured_content is None:
        raise AssertionError(f"{tool} returned no structured content: {result!r}")
    return dict(result.structured_content)


async def call_ok(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise AssertionError(f"{tool} failed: {result!r}")
    return structured(result, tool)


async def call_err(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    if not result.is_error:
        raise AssertionError(f"{tool} should have failed: {result!r}")
    return structured(result, tool)


async def read_line() -> str:
    """One line from stdin without blocking the event loop (the session keeps reading its stream)."""
    return await anyio.to_thread.run_sync(sys.stdin.readline)


async def as_the_assistant(url: str, token: str) -> dict[str, Any]:
    updated: list[str] = []
    update_seen = anyio.Event()
    transport_errors: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            transport_errors.append(repr(message))
            log(f"transport error: {message!r}")
        elif isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            if str(message.params.uri) == CHANNEL_URI:
                update_seen.set()

    async with (
        http_client(token) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(
            read, write, client_info=types.Implementation(name=CLIENT_NAME, version="1.0.0"), message_handler=on_message
        ) as session,
    ):
        init = await session.initialize()
        log(f"initialized: protocol {init.protocol_version}, server {init.server_info.name}")
        capabilities = init.capabilities.resources
        # Listing the tools lets the SDK validate each structured result against its output schema.
        tools = await session.list_tools()
        names = sorted(tool.name for tool in tools.tools)

        channel = await call_ok(session, "mttrly_create_channel", {"channel": CHANNEL})
        # A sender in the arguments is refused: the server takes it from the credentials.
        spoof = await call_err(
            session,
            "mttrly_publish_notification",
            {
                "channel": CHANNEL,
                "title": "Rollback approved",
                "thread_id": THREAD,
                "sender": {"name": "Tom Rodriguez", "role": "Engineering Lead", "ai_tool": "Claude"},
            },
        )
        ack = await call_ok(
            session,
            "mttrly_publish_notification",
            {
                "channel": CHANNEL,
                "title": "Incident Acknowledged - Investigating",
                "body": "Sarah is on it through ChatGPT.",
                "priority": "critical",
                "theme": "incident-update",
                "tags": ["p0", "investigating"],
                "thread_id": THREAD,
            },
        )

        with warnings.catch_warnings():
            # resources/subscribe is the 2025 revisions' method (the SDK marks it deprecated for 2026-07-28).
            warnings.simplefilter("ignore")
            await session.subscribe_resource(CHANNEL_URI)
        emit("subscribed", protocol_version=init.protocol_version)
        go = (await read_line()).strip()
        if go != "go":
            raise AssertionError(f"expected `go` on stdin, got {go!r}")
        with anyio.move_on_after(UPDATE_SECONDS):
            await update_seen.wait()

        thread = await call_ok(session, "mttrly_get_thread", {"thread_id": THREAD})
        return {
            "protocol_version": init.protocol_version,
            "server": init.server_info.name,
            "resources_subscribe": None if capabilities is None else capabilities.subscribe,
            "tools": names,
            "channel": channel,
            "spoof": spoof,
            "ack": ack,
            "updated": updated,
            "thread": thread,
            "transport_errors": transport_errors,
        }


async def as_the_person(url: str, token: str) -> dict[str, Any]:
    async with (
        http_client(token) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, client_info=types.Implementation(name=CLIENT_NAME, version="1.0.0")) as session,
    ):
        await session.initialize()
        await session.list_tools()
        return await call_ok(
            session,
            "mttrly_publish_notification",
            {
                "channel": CHANNEL,
                "title": "Root Cause Identified",
                "body": "Connection leak in v2.4.3",
                "priority": "critical",
                "theme": "incident-update",
                "tags": ["p0", "root-cause-identified"],
                "thread_id": THREAD,
            },
        )


async def main() -> None:
    url = os.environ["MTTRLY_MCP_URL"]
    with anyio.fail_after(OVERALL_SECONDS):
        result = await as_the_assistant(url, os.environ["MTTRLY_TOKEN"])
        result["own_token_post"] = await as_the_person(url, os.environ["MTTRLY_PERSONAL_TOKEN"])
    emit("result", **result)


if __name__ == "__main__":
    anyio.run(main)
