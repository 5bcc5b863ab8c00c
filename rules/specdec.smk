# Study "specdec": rules arrive with its issue (spec: ../shared/specs/specdec.md).
# Results live under results/specdec/; logs/ and benchmarks/ mirror that path.
