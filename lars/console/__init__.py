"""The admin console: route administration and host health in a browser, plus a JSON API.

`build_console(engine, password)` gives the ASGI app; `ConsoleServer(app, ip, port)` serves
it with uvicorn on a thread the caller owns through start()/stop().
"""

from lars.console.app import build_console
from lars.console.config import DEFAULT_PORT, PASSWORD_ENV, ConsoleConfig
from lars.console.server import ConsoleServer

__all__ = ["DEFAULT_PORT", "PASSWORD_ENV", "ConsoleConfig", "ConsoleServer", "build_console"]
