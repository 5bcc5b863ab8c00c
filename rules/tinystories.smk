# Study "tinystories": rules arrive with its issue (spec: ../shared/specs/tinystories.md).
# Results live under results/tinystories/; logs/ and benchmarks/ mirror that path.
