"""``sj-transfer train | eval | configs`` (also ``torchrun -m sj_transfer.cli``).

    sj-transfer train --config mnist5k --out runs/transfer            # embedded default, no data needed
    sj-transfer train --config mnist5k --baseline --out runs/baseline # same network, event data only
    sj-transfer train --config ncaltech101_r0.1 --data-root ~/data --epochs 300

The command line is :func:`sj_common.cli.main` filled in by :data:`sj_transfer.recipe.RECIPE`;
``sj-transfer train --help`` lists every flag with the value the chosen ``--config`` uses.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from sj_common.cli import main as run

    from .recipe import RECIPE

    return run(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())
