#!/usr/bin/env python3
# Parse an interfaces(5) file with ifupdown2's own parser (extracted .deb
# tree, no root, no netlink): the stanza grammar plus the attribute names the
# addons declare, and duplicate stanzas. Exit 0 when ifupdown2 reports no error and no warning.
import importlib, logging, os, sys
tree, ifile = sys.argv[1], sys.argv[2]
share = os.path.join(tree, 'usr/share/ifupdown2')
sys.path.insert(0, share)
logging.basicConfig(format='%(levelname)s: %(message)s', level=logging.WARNING)
from ifupdown.networkinterfaces import networkInterfaces
attrs = {}
for name in sorted(set(l.strip().split(',')[1] for l in open(os.path.join(tree, 'etc/network/ifupdown2/addons.conf')) if ',' in l)):
    if not os.path.exists(os.path.join(share, 'addons', name + '.py')):
        continue  # listed in addons.conf but not shipped (clagd, vxrd: Cumulus only)
    try:
        mod = importlib.import_module('addons.' + name)
    except Exception as e:
        print('cannot import addon %s: %s' % (name, e), file=sys.stderr); sys.exit(3)
    info = getattr(getattr(mod, name, None), '_modinfo', None) or {}
    for key, val in (info.get('attrs') or {}).items():
        attrs[key] = True
        for alias in (val.get('aliases') or []): attrs[alias] = True
seen = {}
def found(obj):
    prev = seen.get(obj.name)
    if prev is not None and obj.compare(prev):
        logging.warning('duplicate interface %s found' % obj.name); nifaces.warns += 1
    seen.setdefault(obj.name, obj)
nifaces = networkInterfaces(ifile)
nifaces.subscribe('iface_found', found)
nifaces.subscribe('validateifaceattr', lambda a, v: a in attrs)
nifaces.load()
sys.exit(1 if nifaces.errors or nifaces.warns else 0)
