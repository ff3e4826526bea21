"""The models: the melody LSTM and the harmony model, their numpy twins, seeded draws,
conditioning, sampling and self-describing checkpoints (safetensors plus JSON).

Imports `engine.music` only; never the band, media or formats. torch is imported only by
`lstm`, `harmony_net` and the torch paths of `checkpoint` and `sample`.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "config": ["ModelConfig"],
    "checkpoint": ["Checkpoint", "CheckpointError", "load_checkpoint", "read_meta", "save_checkpoint"],
    "conditioning": ["ERAS", "cond_ids", "era_label"],
    "harmony": ["HarmonyConfig", "write_chorus", "draw_key"],
    "sample": ["SampleRequest", "sample", "pick_device"],
    "seeded": ["Uniform"],
})
