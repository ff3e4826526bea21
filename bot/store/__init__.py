"""What the bot keeps: the SQLite database (jobs, active checkpoints, audit), installed
checkpoints and their uploads, retention, and the checked shape of a finished job's result.

Never imports `bot.queues`.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "db": ["Store", "Job", "backup"],
    "catalog": ["Catalog", "CatalogError", "Installed"],
    "results": ["ResultError", "check_result"],
})
