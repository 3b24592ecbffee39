"""RBAC: a ServiceAccount gets exactly the verbs its Role grants; a missing verb is a 403.

kmock's emulator has no authorizer. A real API server refuses, for example, a status write by an
operator whose Role grants `datastores` but forgets the `datastores/status` subresource.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import Kubectl, api_message, service_account_token

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "liteshift.io", "v1alpha1", "datastores"


def grant(api_client: client.ApiClient, namespace: str, account: str, verbs: list[str]) -> None:
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name=account),
            rules=[client.V1PolicyRule(api_groups=[GROUP], resources=[PLURAL], verbs=verbs)],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=account),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=account
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)
            ],
        ),
    )


def as_token(api_client: client.ApiClient, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = api_client.configuration.host
    configuration.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def test_service_account_gets_403_for_a_verb_its_role_lacks(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    grant(api_client, namespace, "reader", ["get", "list", "watch", "update", "patch"])
    admin = client.CustomObjectsApi(api_client)
    admin.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Datastore",
            "metadata": {"name": "mine"},
            "spec": {},
        },
    )
    token = service_account_token(api_client, namespace, "reader")
    with as_token(api_client, token) as reader_client:
        reader = client.CustomObjectsApi(reader_client)
        listed = reader.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        assert [item["metadata"]["name"] for item in listed["items"]] == ["mine"]

        with pytest.raises(ApiException) as deleting:
            reader.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "mine")
        assert deleting.value.status == 403
        user = f"system:serviceaccount:{namespace}:reader"
        assert f'User "{user}" cannot delete resource "datastores"' in api_message(deleting.value)

        # `datastores` does not cover the status subresource: a classic operator RBAC bug.
        with pytest.raises(ApiException) as status_write:
            reader.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "mine", {"status": {"phase": "Ready"}}
            )
        assert status_write.value.status == 403
        assert 'cannot patch resource "datastores/status"' in api_message(status_write.value)

        # Outside its namespace the account sees nothing.
        with pytest.raises(ApiException) as elsewhere:
            reader.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
        assert elsewhere.value.status == 403

    assert admin.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "mine")


def test_kubectl_auth_can_i_answers_for_the_service_account(
    crds: list[str], api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    grant(api_client, namespace, "lister", ["list"])
    token = service_account_token(api_client, namespace, "lister")

    def can_i(verb: str) -> bool:
        result = kubectl.run(
            "auth",
            "can-i",
            verb,
            "datastores.liteshift.io",
            "-n",
            namespace,
            token=token,
            check=False,
        )
        return result.stdout.strip() == "yes"

    assert can_i("list")
    assert not can_i("create")
    denied = kubectl.run("delete", "datastore", "x", "-n", namespace, token=token, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
