"""Study "tinystories" (seed 004): does fine-tuning delete a feature from a small
llama2.c-style model trained from scratch, or only hide it?

Modules: ``stories`` (record schema, rendering, feature detectors), ``transforms``
(the filter / mix_match / adversarial / refusal grammar), ``corpus`` (synthetic corpus,
hub tarball, unpacking, manifest), ``vocab`` (SentencePiece), ``pretokenize`` (uint16
shards), ``architectures`` (the ``llama2c`` model), ``training`` (pretrain, deletion,
recovery on the shared HF Trainer loop), ``evaluation`` (losses, sampling, marker
log-probabilities, probes), ``report`` (results table, checks, figures) and ``workflow``
(torch-free glue for the rules).
"""
