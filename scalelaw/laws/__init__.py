"""Built-in law families. Importing this package registers every law in it."""
from . import loss  # noqa: F401
from . import density  # noqa: F401
from . import overtrain, downstream  # noqa
from . import hparams  # noqa
from . import architecture  # noqa: F401
from . import anneal  # noqa: F401  lr_anneal (Tissue et al. 2024)

# `import scalelaw as sl; sl.laws()` calls scalelaw.api.laws (the registered laws as a table)
from .._callable import make_callable  # noqa: E402

make_callable(__name__)
