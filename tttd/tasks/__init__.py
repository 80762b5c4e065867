"""Built-in tasks. Importing this package registers them (each module uses @register_task).

Keep this a plain list of imports: one module per task family.
"""

from tttd.tasks import autocorrelation, circle_packing, demo, denoising, erdos, maxcut  # noqa: F401
from tttd.tasks import ahc  # noqa: F401
from tttd.tasks.speed import trimul  # noqa: F401
