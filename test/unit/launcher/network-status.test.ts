// Device paths from Multus' network-status reach the VmConfig CH opens as root: each must have its device's one shape.
import { vdpaDevice, vfioPath, vhostUserSocket } from '../../../operator/launcher/network-status';

const what = 'spec.instance.interfaces[1] (vf)';

describe('network-status device paths', () => {
  it('builds the VF path from a PCI address and nothing else', () => {
    expect(vfioPath('0000:18:02.5', what, 'net1')).toBe('/sys/bus/pci/devices/0000:18:02.5');
    expect(vfioPath('0000:AF:00.1', what, 'net1')).toBe('/sys/bus/pci/devices/0000:af:00.1');
    for (const bad of ['../../../../dev/kvm', '0000:18:02.5/../../x', '18:02.5', '0000:18:02.8']) {
      expect(() => vfioPath(bad, what, 'net1')).toThrow(`device-info of link net1: ${bad} is not a PCI address`);
    }
  });

  it('accepts only vhost-vdpa character devices', () => {
    expect(vdpaDevice('/dev/vhost-vdpa-1', what, 'net2')).toBe('/dev/vhost-vdpa-1');
    for (const bad of ['/dev/vhost-vdpa-1/../kvm', '/dev/mem', 'vhost-vdpa-1']) {
      expect(() => vdpaDevice(bad, what, 'net2')).toThrow('is not a vhost-vdpa device');
    }
  });

  it('accepts vhost-user sockets as absolute paths of plain names', () => {
    expect(vhostUserSocket('/var/lib/cni/usrcni/abc-net1.sock', what, 'net3')).toBe(
      '/var/lib/cni/usrcni/abc-net1.sock',
    );
    for (const bad of ['relative.sock', '/var/run/../../proc/self/mem', '/var//run/x.sock', '/var/run/a b', '/']) {
      expect(() => vhostUserSocket(bad, what, 'net3')).toThrow('is not an absolute path of plain names');
    }
  });
});
