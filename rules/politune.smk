# Study "politune": rules arrive with its issue (spec: ../shared/specs/politune.md).
# Results live under results/politune/; logs/ and benchmarks/ mirror that path.
