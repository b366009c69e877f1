"""The admin console: route administration and host health in a browser, plus a JSON API.

`build_console(engine, password)` gives the ASGI app; `ConsoleServer(app, ip, port)` serves
it with uvicorn on a thread the caller owns through start()/stop(). An embedding caller
(`lars up`) does:

    password = configured_password or generate_password()   # print it for --demo
    server = ConsoleServer(build_console(engine, password), "127.0.0.1", DEFAULT_PORT)
    server.start()   # returns once listening; server.url
    ...
    server.stop()
"""

from lars.console.app import build_console
from lars.console.config import DEFAULT_PORT, PASSWORD_ENV, ConsoleConfig, generate_password
from lars.console.server import ConsoleServer

__all__ = [
    "DEFAULT_PORT",
    "PASSWORD_ENV",
    "ConsoleConfig",
    "ConsoleServer",
    "build_console",
    "generate_password",
]
