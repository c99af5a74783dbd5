"""Gathers concurrent legacy heartbeats into one ``RecordHeartbeats`` RPC.

Heartbeats that arrive while the event loop is busy, or while ``max_inflight``
batches are already on their way, leave together in the next batch: one RPC
and one database transaction for many HTTP requests, and nothing waits on a
timer when the gateway is idle. Each HTTP request still gets its own outcome,
after its heartbeat is committed.
"""
from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from medic import tracing
from medic.v1 import heartbeat_pb2

SendBatch = Callable[[list[heartbeat_pb2.RecordHeartbeatRequest]],
                     Awaitable[heartbeat_pb2.RecordHeartbeatsResponse]]


class HeartbeatBatcher:
    def __init__(self, send: SendBatch, *, max_batch: int = 500, max_inflight: int = 4):
        self._send_batch = send
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._queue: collections.deque = collections.deque()
        self._inflight = 0
        self._scheduled = False

    async def record(self, item: heartbeat_pb2.RecordHeartbeatRequest) -> heartbeat_pb2.RecordHeartbeatResult:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((item, future, tracing.current_context()))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._queue and self._inflight < self.max_inflight:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._inflight += 1
            asyncio.ensure_future(self._send(batch))

    async def _send(self, batch) -> None:
        try:
            # The batch's RPC continues the first request's trace; the others are linked.
            with tracing.span("heartbeat batch", parents=[context for *_, context in batch],
                              attributes={"medic.heartbeats": len(batch)}):
                response = await self._send_batch([item for item, *_ in batch])
            for (_, future, _), result in zip(batch, response.results):
                if not future.done():
                    future.set_result(result)
        except BaseException as exc:  # every waiter learns the outcome, whatever it is
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._inflight -= 1
            if self._queue:
                self._schedule(asyncio.get_running_loop())
