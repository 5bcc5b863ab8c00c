"""Study "specdec" (seed 002): group disparity in speculative-decoding acceptance between
a main model and its smaller assistant, before and after fine-tuning both on news, with
the KL divergence between them over training and the toxicity of their generations.

Spec: ../shared/specs/specdec.md. Modules: ``templates`` (HONEST-format prompts and
views), ``decoding`` (the greedy draft-and-verify loop and its transformers cross-check),
``pairing`` (whether two models can decode together, shared by ``decoding`` and the pair
loader ``conditions``), ``divergence`` (KL, JS, TV), ``finetune`` (fine-tuning with template-distribution
milestones), ``toxicity``, ``stats``, ``figures``; ``workflow`` is the torch-free glue
the rules use (one function per rule), ``jobs`` the rules' job functions and
``generators`` the demo tier's synthetic corpora.
"""
