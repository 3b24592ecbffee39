"""The liteshift operator: pure builders (`specs`) under thin kopf handlers (`handlers`).

Only `liteshift.operator.kube` talks to the Kubernetes API; everything else is plain data.
"""
