"""The job service, independent of Discord's API shapes: accept a request, keep the books, hand
it to a queue, and follow it to delivery; the buttons' next requests; seed uploads; honest waits.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "compose": ["ComposeService", "Submission"],
    "estimate": ["WaitEstimator", "Estimate"],
    "seeds": ["SeedReader"],
    "waiting": ["WaitingBoard"],
})
