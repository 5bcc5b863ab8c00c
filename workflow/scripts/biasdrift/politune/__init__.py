"""Study "politune" (seed 001): LoRA / QLoRA DPO and SFT of a chat model towards a
political side, and how far the model moves on a statement probe, a free-text probe
scored by a judge, and held-out preference pairs (spec: ../shared/specs/politune.md).

Modules: ``world`` (the demo's synthetic town), ``generators`` (its datasets),
``pairs`` (cleaning, held-out split, mixes), ``formatting`` (the one prompt format of
training and evaluation), ``train`` (trl DPO / SFT through the shared training loop),
``adapters`` (loading, checks, merging), ``probe`` (statement probe and parser),
``judge`` (free-text judges), ``preference`` (implicit-reward margins), ``summary`` and
``plots``; ``workflow`` is the torch-free glue for the rules.
"""
