# Study "circuits": rules arrive with its issue (spec: ../shared/specs/circuits.md).
# Results live under results/circuits/; logs/ and benchmarks/ mirror that path.
