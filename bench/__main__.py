"""`python -m bench NAME [options]`: run one benchmark; figures go to bench/results/."""
import importlib
import sys

BENCHES = {"book": "book_build", "bn": "batchnorm", "norm": "normalization", "grading": "grading", "gpu": "gpu"}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    mod = importlib.import_module(f"bench.{BENCHES[sys.argv[1]]}")
    return mod.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
