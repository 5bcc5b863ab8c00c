# Study "d3m": rules arrive with its issue (spec: ../shared/specs/d3m.md).
# Results live under results/d3m/; logs/ and benchmarks/ mirror that path.
