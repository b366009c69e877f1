"""The generic reactor: frames, routing, loop threads, TCP and UDP endpoints.

It knows frames and msgids, never Lars messages.
"""

from lars.reactor.backoff import backoff, no_backoff
from lars.reactor.config import BufferLimits, ReactorConfig
from lars.reactor.connection import Connection
from lars.reactor.frame import MAX_BODY, FrameDecoder, decode_datagram, encode
from lars.reactor.loop import LoopThread, new_event_loop
from lars.reactor.router import Router
from lars.reactor.taskqueue import TaskQueue
from lars.reactor.tcp_client import TcpClient
from lars.reactor.tcp_server import ServerStats, TcpServer
from lars.reactor.udp import UdpClient, UdpServer
from lars.reactor.worker import Worker

__all__ = [
    "MAX_BODY",
    "BufferLimits",
    "Connection",
    "FrameDecoder",
    "LoopThread",
    "ReactorConfig",
    "Router",
    "ServerStats",
    "TaskQueue",
    "TcpClient",
    "TcpServer",
    "UdpClient",
    "UdpServer",
    "Worker",
    "backoff",
    "decode_datagram",
    "encode",
    "new_event_loop",
    "no_backoff",
]
