"""`lars up`: route service, reporter, agent and console in one process.

stack (building, starting and stopping the parts; the command), metrics (the one
listener that serves every part's families).
"""

from lars.up.stack import UpConfig, UpStack, register, seed_demo

__all__ = ["UpConfig", "UpStack", "register", "seed_demo"]
