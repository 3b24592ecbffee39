"""kopf handlers, one module per concern; importing this package registers them all.

`kopf run -m liteshift.operator.handlers` (or `liteshift operator`) runs them.
"""

from liteshift.operator.handlers import backups, datastore, promotion, runtime

__all__ = ["backups", "datastore", "promotion", "runtime"]
