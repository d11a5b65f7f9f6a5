"""render: the OpenStack side. Client ceph.conf, Glance/Cinder/Nova config sections,
libvirt secrets, keyrings, laid out per host role (plain) or as kolla-ansible expects.
Pure: from the spec and the cluster's facts to file contents."""
