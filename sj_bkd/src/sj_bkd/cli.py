"""``sj-bkd train | eval | configs`` (also ``torchrun -m sj_bkd.cli``).

    sj-bkd train --config mnist5k --teacher train --out runs/bkd
    sj-bkd train --config imagenet_sew34_r34_mixed --data-root ~/data/imagenet --teacher-weights r34.pth
    torchrun --nproc_per_node=4 -m sj_bkd.cli train --config cifar100_cml4_384_vits_mixed --data-root ~/data ...

The command line is :func:`sj_common.cli.main` filled in by :data:`sj_bkd.recipe.RECIPE`;
``sj-bkd train --help`` lists every flag with the value the chosen ``--config`` uses.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from sj_common.cli import main as run

    from .recipe import RECIPE

    return run(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())
