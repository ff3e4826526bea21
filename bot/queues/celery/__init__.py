"""The Celery backend (``CHORUS_QUEUE=celery``): the shared app, the bot's side of the queue,
the worker runtime with batching, the payloads, the checkpoint sync through Redis, and the local
parts (a throwaway redis-server and workers) that tests and benchmarks start.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "queue": ["CeleryQueue"],
    "worker": ["run_worker"],
    "app": ["make_app"],
    "parts": ["RedisServer", "Workers"],
})
