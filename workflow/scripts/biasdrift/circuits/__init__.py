"""Study "circuits" (seed 000, ../shared/specs/circuits.md): bias prompts, group splits,
M1/M2 and gender metrics, edge attribution patching (EAP) on any Hugging Face causal LM
through hooks on its own modules, fine-tuning, and circuit comparison / stability."""
