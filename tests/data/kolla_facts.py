"""How kolla-ansible 2024.1 (Caracal) and 2025.1 (Epoxy) consume external Ceph config.

Read from openstack/kolla-ansible tags 18.8.0 (last 2024.1 release; the ceph files are the same
at 18.0.0 and unmaintained/2024.1) and 20.5.0 (the same at 20.0.0 and stable/2025.1 a7fc0cd6).
Placeholders: {cluster} {user} {host} {svc} {cinder_user} {backup_user} {vms_user} {name}.
Paths are relative to node_custom_config (/etc/kolla/config) unless they start with /.
Kolla never writes a keyring= line into ceph.conf: the Ceph client finds
/etc/ceph/$cluster.$name.keyring through its default search path.
"""

from typing import Any

K18 = "openstack/kolla-ansible @ 18.8.0 (942f5bcfeaca6903bcce8913972602a124d2abfd): "
K20 = "openstack/kolla-ansible @ 20.5.0 (18f731b2ef55a7dfb43182682458b1c8053c9cc2): "
BOTH = "openstack/kolla-ansible @ 18.8.0 and 20.5.0: "

_DEFAULTS = {  # ansible/group_vars/all.yml + role defaults; identical in both releases
    "glance_backend_ceph": "no", "cinder_backend_ceph": "no", "nova_backend_ceph": "no",
    "external_ceph_cephx_enabled": "yes", "cinder_backup_driver": "ceph",
    "ceph_glance_user": "glance", "ceph_glance_pool_name": "images",
    "ceph_cinder_user": "cinder", "ceph_cinder_pool_name": "volumes",
    "ceph_cinder_backup_user": "cinder-backup", "ceph_cinder_backup_pool_name": "backups",
    "ceph_nova_user": "{{ ceph_cinder_user }}",  # Nova uses Cinder's Ceph user by default
    "ceph_nova_pool_name": "vms",
    "cinder_backend_ceph_name": "rbd-1",
    # must name an entry of cinder_ceph_backends, else "No first item" templating error
    "cinder_backup_backend_ceph_name": "rbd-1",
}
_NOVA_CONF = ["nova/{host}/{cluster}.conf", "nova/{cluster}.conf"]  # first_found, templated
_NOVA_KEY = ["nova/{host}/{cluster}.client.{user}.keyring", "nova/{cluster}.client.{user}.keyring"]
_FILES = {  # read from node_custom_config; ceph_conf_merged = merge_configs sources, in order
    "glance-api": {"ceph_conf_merged": ["glance/{cluster}.conf",
                                        "glance/glance-api/{cluster}.conf"],
                   "keyrings": ["glance/{cluster}.client.{user}.keyring"]},
    "cinder-volume": {"ceph_conf_merged": ["cinder/{cluster}.conf",
                                           "cinder/cinder-volume/{cluster}.conf"],
                      "keyrings": ["cinder/cinder-volume/{cluster}.client.{user}.keyring"]},
    "cinder-backup": {"ceph_conf_merged": ["cinder/{cluster}.conf",
                                           "cinder/cinder-backup/{cluster}.conf"],
                      "keyrings": ["cinder/cinder-backup/{cluster}.client.{cinder_user}.keyring",
                                   "cinder/cinder-backup/{cluster}.client.{backup_user}.keyring"]},
    # nova key is needed when nova_backend_ceph; the cinder user's key when cinder_backend_ceph
    "nova-compute": {"ceph_conf": _NOVA_CONF, "keyrings": _NOVA_KEY},
    "nova-libvirt": {"ceph_conf": _NOVA_CONF},
}
_CONTAINER = {  # config.json: container path -> (source in /etc/kolla/<svc>/, owner, perm)
    # ceph/ holds only the files named in _FILES; set_configs adds x to dirs (openstack/kolla)
    "glance-api": {"/etc/ceph": ("ceph/", "glance", "0600")},
    "cinder-volume": {"/etc/ceph": ("ceph/", "cinder", "0600")},
    "cinder-backup": {"/etc/ceph": ("ceph/", "cinder", "0600")},
}
_COMMON = {
    # nova-cell external_ceph.yml fails unless nova/[{host}/]{cluster}.client.<cinder user>.keyring
    # exists when cinder_backend_ceph: its key fills libvirt secret cinder_rbd_secret_uuid. It is
    # copied to /etc/kolla/nova-compute/ but not into the container (config.json omits it).
    "nova_needs_cinder_keyring": True,
    "libvirt_secret_uuids": {"nova": "rbd_secret_uuid", "cinder": "cinder_rbd_secret_uuid"},
    "glance_sets_show_image_direct_url": False,  # guide: set it in config/glance.conf yourself
    "overrides": {  # merge_configs sources after the role template, later wins
        "glance-api.conf": ["global.conf", "glance.conf", "glance/glance-api.conf",
                            "glance/{host}/glance-api.conf"],
        "cinder.conf": ["global.conf", "cinder.conf", "cinder/{svc}.conf",
                        "cinder/{host}/cinder.conf"],
        "nova.conf": ["global.conf", "nova.conf", "nova/{svc}.conf", "nova/{host}/nova.conf",
                      "nova/{host}/{svc}.conf"],
    },
    "staging_mode": {"file": "0660", "dir": "0770"},  # /etc/kolla/<svc>/, config_owner_user
    # cinder.conf: a [{name}] section per cinder_ceph_backends entry (enabled or not);
    # enabled_backends lists the entries whose enabled == true.
    "cinder_rbd_secret_uuid": "cinder_rbd_secret_uuid",  # passwords.yml, kolla-genpwd fills it
}

RELEASES: dict[str, dict[str, Any]] = {
    "2024.1": dict(_COMMON, **{
        "defaults": dict(_DEFAULTS, **{  # no ceph_cluster variable in this release
            "ceph_glance_keyring": "client.{{ ceph_glance_user }}.keyring",
            "ceph_cinder_keyring": "client.{{ ceph_cinder_user }}.keyring",
            "ceph_cinder_backup_keyring": "client.{{ ceph_cinder_backup_user }}.keyring",
            "ceph_nova_keyring": "{{ ceph_cinder_keyring }}",
            "nova_ceph_cluster": "ceph",
            "glance_ceph_backends": [{"name": "rbd", "type": "rbd", "cluster": "ceph",
                                      "enabled": "{{ glance_backend_ceph | bool }}"}],
            "cinder_ceph_backends": [{"name": "{{ cinder_backend_ceph_name }}", "cluster": "ceph",
                                      "enabled": "{{ cinder_backend_ceph | bool }}"}],
            # the entry named cinder_backup_backend_ceph_name; only its .cluster is used
            "cinder_backup_ceph_backend": "cinder_ceph_backends[name == backup name] | first",
        }),
        # pool/user keys of backend entries are IGNORED: every glance/cinder section gets the
        # global ceph_*_pool_name and ceph_*_user, so two Cinder pools cannot be two backends.
        "backend_keys_used": {"glance": ("name", "type", "cluster", "enabled"),
                              "cinder": ("name", "cluster", "enabled", "availability_zone")},
        "keyring_name": "{cluster}.<ceph_*_keyring var>",  # default {cluster}.client.{user}.keyring
        # cinder-backup keyrings: only for the backup backend's cluster
        "files": _FILES,
        "container": dict(_CONTAINER, **{  # "ceph" HARD-CODED: nova_ceph_cluster must stay "ceph"
            "nova-compute": {"/etc/ceph/ceph.<ceph_nova_keyring>": ("same name", "nova", "0600"),
                             "/etc/ceph/{cluster}.conf": ("{cluster}.conf", "nova", "0600")},
            "nova-libvirt": {"/etc/ceph/ceph.conf": ("ceph.conf", "nova", "0600"),
                             "/etc/libvirt/secrets": ("secrets/ (merged)", "root", "0600")},
        }),
        "nova_images_rbd_ceph_conf": "/etc/ceph/ceph.conf",  # hard-coded
        "libvirt_secret_usage_names": ("client.nova secret", "client.cinder secret"),
        "cinder_section": {"volume_backend_name": "{name}", "rbd_pool": "ceph_cinder_pool_name",
                           "rbd_user": "ceph_cinder_user", "rbd_cluster_name": "{cluster}",
                           "rbd_keyring_conf": "/etc/ceph/{cluster}.<ceph_cinder_keyring>",
                           "rendered_for": "every cinder service"},
    }),
    "2025.1": dict(_COMMON, **{
        "defaults": dict(_DEFAULTS, **{
            "ceph_cluster": "ceph",  # new; may be set per compute host in the inventory
            # ceph_{glance,cinder,cinder_backup,nova,gnocchi,manila}_keyring REMOVED (ignored)
            "glance_ceph_backends": [{"name": "rbd", "type": "rbd", "cluster": "{{ ceph_cluster }}",
                                      "pool": "{{ ceph_glance_pool_name }}",
                                      "user": "{{ ceph_glance_user }}",
                                      "enabled": "{{ glance_backend_ceph | bool }}"}],
            "cinder_ceph_backends": [{"name": "{{ cinder_backend_ceph_name }}",
                                      "backend_name": "{{ cinder_backend_ceph_name }}",
                                      "cluster": "{{ ceph_cluster }}",
                                      "user": "{{ ceph_cinder_user }}",
                                      "pool": "{{ ceph_cinder_pool_name }}",
                                      "enabled": "{{ cinder_backend_ceph | bool }}"}],
            "cinder_backup_ceph_backend": "cinder_ceph_backends[name == backup name] | first"
                                          " | combine(pool=ceph_cinder_backup_pool_name,"
                                          " user=ceph_cinder_backup_user)",
            "nova_cell_ceph_backend": {  # replaces nova_ceph_cluster
                "cluster": "{{ ceph_cluster }}",
                "vms": {"user": "{{ ceph_nova_user }}", "pool": "{{ ceph_nova_pool_name }}"},
                "volumes": {"user": "{{ ceph_cinder_user }}",
                            "pool": "{{ ceph_cinder_pool_name }}"},
            },
        }),
        "backend_keys_used": {"glance": ("name", "type", "cluster", "pool", "user", "enabled"),
                              "cinder": ("name", "backend_name", "cluster", "pool", "user",
                                         "enabled", "availability_zone")},
        "keyring_name": "{cluster}.client.{user}.keyring",
        # cinder-volume/-backup get ceph.conf of every backend cluster + the backup cluster;
        # cinder-backup gets the keyring of every cinder backend + the backup backend's
        "files": _FILES,
        "container": dict(_CONTAINER, **{
            "nova-compute": {"/etc/ceph/{cluster}.client.{vms_user}.keyring":
                             ("same name", "nova", "0600"),
                             "/etc/ceph/{cluster}.conf": ("{cluster}.conf", "nova", "0600")},
            "nova-libvirt": {"/etc/ceph/{cluster}.conf": ("{cluster}.conf", "nova", "0600"),
                             "/etc/libvirt/secrets": ("secrets/ (merged)", "root", "0600")},
        }),
        "nova_images_rbd_ceph_conf": "/etc/ceph/{cluster}.conf",
        "libvirt_secret_usage_names": ("ceph-ephemeral-nova", "ceph-persistent-cinder"),
        "cinder_section": {"volume_backend_name": "{backend_name|default(name)}",
                           "rbd_pool": "{pool}", "rbd_user": "{user}",
                           "rbd_cluster_name": "{cluster}",
                           "rbd_keyring_conf": "/etc/ceph/{cluster}.client.{user}.keyring",
                           "rendered_for": "cinder-volume only"},
    }),
}
# merge_configs (glance/cinder ceph.conf) parses with oslo_config.iniparser: a line starting with
# a space or tab is a continuation -> "Unexpected continuation line" after [global], or silently
# glued to the previous value. Comments are dropped; output is "key = value". All sources and
# keyrings are also Jinja-templated by Ansible: no "{{", "{%" or "{#" in them.
CEPH_CONF_NO_LEADING_WHITESPACE = True

SOURCES = {
    "defaults.2024.1": K18 + "ansible/group_vars/all.yml L1164-1187, "
                             "roles/{glance,cinder,nova-cell}/defaults/main.yml",
    "defaults.2025.1": K20 + "ansible/group_vars/all.yml L1287-1304, "
                             "roles/{glance,cinder,nova-cell}/defaults/main.yml",
    "keyring_vars_removed": K20 + "releasenotes/notes/"
                                  "enhance-ceph-multiple-clusters-integration-d29815a12c223152.yaml",
    "backend_name": K20 + "releasenotes/notes/cinder-ceph-backend-name-0984e44da7905a81.yaml",
    "files": BOTH + "ansible/roles/{glance,cinder,nova-cell}/tasks/external_ceph.yml",
    "container": BOTH + "ansible/roles/{glance,cinder,nova-cell}/templates/"
                        "{glance-api,cinder-volume,cinder-backup,nova-compute,nova-libvirt}.json.j2",
    "dir_exec_bit": "openstack/kolla @ 18.8.0 and 20.4.0: docker/base/set_configs.py",
    "cinder_section": BOTH + "ansible/roles/cinder/templates/cinder.conf.j2",
    "glance_section": BOTH + "ansible/roles/glance/templates/glance-api.conf.j2",
    "nova_conf": BOTH + "ansible/roles/nova-cell/templates/nova.conf.d/libvirt.conf.j2",
    "libvirt_secrets": BOTH + "ansible/roles/nova-cell/tasks/external_ceph.yml, secret.xml.j2",
    "secret_uuids": BOTH + "etc/kolla/passwords.yml L9-10, kolla_ansible/cmd/genpwd.py",
    "show_image_direct_url": BOTH + "absent from ansible/; doc/source/reference/storage/"
                                    "external-ceph-guide.rst",
    "overrides": BOTH + "ansible/roles/{glance,cinder,nova-cell}/tasks/config.yml",
    "leading_tabs": BOTH + "external-ceph-guide.rst note, ansible/action_plugins/merge_configs.py "
                           "(run against oslo.config iniparser)",
}
