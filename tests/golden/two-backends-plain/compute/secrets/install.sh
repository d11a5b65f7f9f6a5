#!/bin/sh
# Install cephstack's libvirt secrets on this compute host.
# The keys stay in the .key files (mode 0600); they are passed by file.
set -eu
cd "$(dirname "$0")"
virsh secret-define --file 830f3b0f-d0dc-596a-9ac4-81d040081315.xml
virsh secret-set-value --secret 830f3b0f-d0dc-596a-9ac4-81d040081315 --file 830f3b0f-d0dc-596a-9ac4-81d040081315.key
virsh secret-define --file ee54027a-86e7-5dec-ac4b-e0b6fb9a604a.xml
virsh secret-set-value --secret ee54027a-86e7-5dec-ac4b-e0b6fb9a604a --file ee54027a-86e7-5dec-ac4b-e0b6fb9a604a.key
