#!/bin/sh
# /init of the kubevisor test guest (busybox sh). It reports what a real guest sees — its DHCP
# lease, routes, MTU, block devices and NoCloud (cidata) files, reachability of a peer — as
# machine-readable lines on the serial console, then powers off. test/launch/guest.ts parses them:
#
#   KV-GUEST init uptime-ms=<kernel uptime when init started> kernel=<release>
#   KV-GUEST nic name=<eth0> mac=<mac>
#   KV-GUEST dhcp ip=<ip/prefix> router=<gw> mtu=<mtu> dns=<a,b> domain=<d> search=<a,b> ms=<since init start>
#   KV-GUEST web port=<80> ready                 (the guest's own web server, see below)
#   KV-GUEST route <line of `ip route`>          (one per route)
#   KV-GUEST link mtu=<mtu of the NIC after DHCP>
#   KV-GUEST disk name=<vda> bytes=<n> ro=<0|1> fs=<iso9660|-> label=<label|-> head-sha256=<first 4 KiB>
#   KV-GUEST cidata device=<vdb> files=<a,b,...>
#   KV-GUEST cidata-file name=<file> bytes=<n> sha256=<hash>
#   KV-GUEST userdata sha256=<hash> bytes=<n> first-line=<rest of the line>
#   KV-GUEST metadata instance-id=<id> local-hostname=<name>
#   KV-GUEST peer <ip> ok|fail
#   KV-GUEST spoof control|mac|ip|arp sent=yes|no reply=yes|no
#   KV-GUEST probe <host>:<port> ok|fail [why]
#   KV-GUEST http port=<port> ready (one per port)  /  KV-GUEST http closed reason=bye|hold
#   KV-GUEST error <what went wrong>
#   KV-GUEST done
#   KV-GUEST stay                                (kv.then=stay: the guest keeps running)
#   KV-GUEST power-button                        (the ACPI power button was pressed: the guest powers off)
#
# Kernel command line options: kv.peer=<ip>[,<ip>...] pings each peer; kv.http=<port>[,<port>...]
# serves "kv-guest instance-id=<id> ip=<ip>" on those ports until GET /cgi-bin/bye or
# kv.hold=<seconds> (default 60) passes; kv.dhcp=off skips DHCP.
# Like a server VM, the guest runs a web server on port 80 from when its NIC is up (after DHCP) until it stops,
# serving "kv-guest hostname=<h> instance-id=<id> ip=<ip>" (hostname and instance id from the NoCloud meta-data);
# kv.web=<port> moves it, kv.web=off leaves it out (a kv.http port of the same number serves its own page instead).
# The ACPI power button (Cloud Hypervisor's vm.power-button, QEMU's system_powerdown) powers the guest off at any
# time. kv.then=poweroff|reboot|stay says what the guest does after "KV-GUEST done": power off (the default),
# reboot, or stay up (serving port 80) until the power button, a reset or a kill ends it.
# kv.spoof=<a>,<b>,<c> kv.spoof-mac=<mac> kv.spoof-ip=<ip> make the guest misbehave as a tenant's
# guest might: ping <a> as itself (the control), ping <b> from the forged MAC, ping <c> from the
# forged source address, and announce the forged address by gratuitous ARP — restoring its own
# MAC and addresses after each. kv.probe=<host>:<port>[,...] sends an HTTP GET to each from the
# guest. Every wait below is bounded, so a broken network or disk ends in "KV-GUEST done" and a
# power-off rather than a hung guest.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel could not open /dev/console before devtmpfs existed (CONFIG_DEVTMPFS_MOUNT is off in
# the cloud kernel), so init starts with no stdio: attach it to the console now.
exec </dev/console >/dev/console 2>&1
mkdir -p /run /tmp /mnt/cidata
# Kernel messages printed while a marker line is being written would split it; from here on only
# emergencies reach the console.
echo 1 >/proc/sys/kernel/printk

# Milliseconds since boot, from /proc/uptime (10 ms resolution, no fork).
uptime_ms() {
  read -r up _ </proc/uptime
  s=${up%.*}
  f=${up#*.}
  f=${f#0} # "08" would be read as a bad octal number
  echo $((s * 1000 + f * 10))
}
t0=$(uptime_ms)

say() { echo "KV-GUEST $*"; }

say init uptime-ms="$t0" kernel="$(uname -r)"

peers=""
http_ports=""
hold=60
dhcp=on
spoof=""
spoof_mac=""
spoof_ip=""
probes=""
web_port=80
then_action=poweroff
for arg in $(cat /proc/cmdline); do
  case "$arg" in
  kv.peer=*) peers=$(echo "${arg#kv.peer=}" | tr ',' ' ') ;;
  kv.http=*) http_ports=$(echo "${arg#kv.http=}" | tr ',' ' ') ;;
  kv.spoof=*) spoof=$(echo "${arg#kv.spoof=}" | tr ',' ' ') ;;
  kv.spoof-mac=*) spoof_mac=${arg#kv.spoof-mac=} ;;
  kv.spoof-ip=*) spoof_ip=${arg#kv.spoof-ip=} ;;
  kv.probe=*) probes=$(echo "${arg#kv.probe=}" | tr ',' ' ') ;;
  kv.hold=*) hold=${arg#kv.hold=} ;;
  kv.dhcp=*) dhcp=${arg#kv.dhcp=} ;;
  kv.web=*) web_port=${arg#kv.web=} ;;
  kv.then=*) then_action=${arg#kv.then=} ;;
  esac
done

# The cloud kernel builds virtio and isofs as modules; build.sh copied them here with their
# dependencies, in load order. virtio_mmio serves -M microvm, virtio_pci serves q35; loading the
# one without devices is harmless.
for m in $(cat /etc/kv-modules); do
  insmod "/lib/modules/$m.ko" || say error insmod "$m"
done

# ---- power button -----------------------------------------------------------------------------
# With button and evdev loaded, ACPI's power button is an input device; a press is one input_event (24 bytes on
# x86-64) on its event node. The guest answers it as a systemd guest does: it powers off. Without ACPI (microvm
# without it) there is no such device and nothing waits.
for dev in /sys/class/input/input*; do
  [ "$(cat "$dev/name" 2>/dev/null)" = "Power Button" ] || continue
  for ev in "$dev"/event*; do
    [ -e "$ev" ] || continue
    (dd if="/dev/input/${ev##*/}" of=/dev/null bs=24 count=1 2>/dev/null && say power-button && poweroff -f) &
  done
done

# ---- network ----------------------------------------------------------------------------------
nic=""
i=0
while [ -z "$nic" ] && [ $i -lt 50 ]; do # 5 s
  for path in /sys/class/net/*; do
    case "${path##*/}" in
    eth* | en*)
      nic=${path##*/}
      break
      ;;
    esac
  done
  [ -n "$nic" ] || usleep 100000
  i=$((i + 1))
done

ip link set lo up
lease_ip=""
if [ -z "$nic" ]; then
  say error no-nic
else
  say nic name="$nic" mac="$(cat "/sys/class/net/$nic/address")"
  ip link set "$nic" up
  if [ "$dhcp" != off ]; then
    # One lease, then exit (-q); give up after 6 discovers 2 s apart (-n -t -T). Options 121, 26
    # and 119 are not in udhcpc's default request list, and dnsmasq only sends what is requested.
    # `timeout` bounds it even if udhcpc misbehaves.
    rm -f /run/kv-lease
    timeout 40 udhcpc -i "$nic" -f -q -n -t 6 -T 2 -A 1 -s /etc/udhcpc.sh \
      -O staticroutes -O mtu -O dns -O domain -O search -O router >/run/udhcpc.log 2>&1
    # shellcheck disable=SC1091,SC2154 # /run/kv-lease (by /etc/udhcpc.sh) sets ip, mask, router, ...
    if [ -f /run/kv-lease ]; then
      . /run/kv-lease
      lease_ip=$ip
      # shellcheck disable=SC2086 # unquoted: collapse the lists' spaces before turning them into commas
      say dhcp ip="$ip/$mask" router="$router" mtu="$mtu" dns="$(echo $dns | tr ' ' ',')" \
        domain="$domain" search="$(echo $search | tr ' ' ',')" ms=$((bound_ms - t0))
      ip route show | while read -r line; do say route "$line"; done
      say link mtu="$(cat "/sys/class/net/$nic/mtu")"
      [ -z "$route_errors" ] || say error route "$route_errors"
    else
      say error dhcp "$(tail -n 3 /run/udhcpc.log | tr '\n' ' ')"
      say link mtu="$(cat "/sys/class/net/$nic/mtu")"
    fi
  fi
fi

# ---- web server -------------------------------------------------------------------------------
# Started once the NIC is up, so a client can reach the guest as early as it has an address; the page is rewritten
# once the meta-data named the guest (httpd reads it per request).
web_page() {
  echo "kv-guest hostname=$(hostname) instance-id=$instance_id ip=$lease_ip" >/web/index.html
}
instance_id=""
case " $http_ports " in *" $web_port "*) web_port=off ;; esac
if [ -n "$nic" ] && [ "$web_port" != off ]; then
  mkdir -p /web
  web_page
  if httpd -p "$web_port" -h /web; then say web port="$web_port" ready; else say error web "$web_port"; fi
fi

# ---- disks ------------------------------------------------------------------------------------
# virtio-blk probes while its module loads, but wait briefly for the nodes anyway (bounded).
i=0
while [ ! -e /sys/block/vda ] && [ $i -lt 20 ]; do
  usleep 100000
  i=$((i + 1))
done
cidata=""
for path in /sys/block/vd*; do
  [ -e "$path" ] || continue
  name=${path##*/}
  bytes=$(($(cat "$path/size") * 512))
  # An ISO 9660 primary volume descriptor sits at 32768: "CD001" at +1, the volume id at +40.
  fs=-
  label=-
  if [ "$(dd if="/dev/$name" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ]; then
    fs=iso9660
    label=$(dd if="/dev/$name" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000')
    [ -n "$label" ] || label=-
  fi
  head=$(dd if="/dev/$name" bs=4096 count=1 2>/dev/null | sha256sum)
  say disk name="$name" bytes="$bytes" ro="$(cat "$path/ro")" fs="$fs" label="$label" head-sha256="${head%% *}"
  case "$label" in cidata | CIDATA) [ -n "$cidata" ] || cidata=$name ;; esac
done

if [ -z "$cidata" ]; then
  say error no-cidata
elif ! mount -t iso9660 -o ro "/dev/$cidata" /mnt/cidata; then
  say error mount "$cidata"
else
  files=$(ls /mnt/cidata | tr '\n' ',')
  say cidata device="$cidata" files="${files%,}"
  for f in /mnt/cidata/*; do
    [ -f "$f" ] || continue
    sum=$(sha256sum "$f")
    say cidata-file name="${f##*/}" bytes="$(wc -c <"$f")" sha256="${sum%% *}"
  done
  if [ -f /mnt/cidata/user-data ]; then
    sum=$(sha256sum /mnt/cidata/user-data)
    first=$(head -n 1 /mnt/cidata/user-data | tr -d '\r')
    say userdata sha256="${sum%% *}" bytes="$(wc -c </mnt/cidata/user-data)" first-line="$first"
  else
    say error no-user-data
  fi
  if [ -f /mnt/cidata/meta-data ]; then
    # meta-data is YAML (JSON is YAML too): read "key: value" with optional quotes.
    meta() {
      sed -n "s/^[[:space:]{,]*\"\{0,1\}$1\"\{0,1\}[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\).*/\1/p" \
        /mnt/cidata/meta-data | head -n 1 | tr -d "'\r"
    }
    instance_id=$(meta instance-id)
    local_hostname=$(meta local-hostname)
    say metadata instance-id="$instance_id" local-hostname="$local_hostname"
    # As cloud-init does: the guest takes the name its meta-data gives it.
    [ -z "$local_hostname" ] || hostname "$local_hostname"
    [ ! -d /web ] || web_page
  else
    say error no-meta-data
  fi
fi

# ---- peers ------------------------------------------------------------------------------------
for peer in $peers; do
  # At most 3 echoes, 2 s for the first reply, 10 s overall.
  if ping -c 3 -W 2 -w 10 "$peer" >/run/ping.log 2>&1; then
    say peer "$peer" ok
  else
    say peer "$peer" fail
  fi
done

# ---- spoofing ---------------------------------------------------------------------------------
# Each attempt says whether the guest managed to send (sent=) and whether anything answered
# (reply=); the test checks on the far side that nothing arrived.
yes_no() { if "$@" >/run/spoof.log 2>&1; then echo yes; else echo no; fi; }
if [ -n "$spoof" ] && [ -n "$nic" ]; then
  # shellcheck disable=SC2086 # three targets, split on purpose
  set -- $spoof
  control=$1 mac_target=$2 ip_target=$3
  say spoof control sent=yes reply="$(yes_no ping -c 2 -W 2 "$control")"
  own_mac=$(cat "/sys/class/net/$nic/address")
  if ip link set dev "$nic" address "$spoof_mac"; then
    say spoof mac sent=yes reply="$(yes_no ping -c 2 -W 2 "$mac_target")"
    ip link set dev "$nic" address "$own_mac" || say error spoof-restore-mac
  else
    say spoof mac sent=no reply=no
  fi
  if ip addr add "$spoof_ip/32" dev "$nic"; then
    say spoof ip sent=yes reply="$(yes_no ping -c 2 -W 2 -I "$spoof_ip" "$ip_target")"
    # Gratuitous ARP: "the forged address is at my MAC", as a guest taking over a neighbour would say.
    say spoof arp sent="$(yes_no arping -U -c 2 -I "$nic" -s "$spoof_ip" "$spoof_ip")" reply=no
    ip addr del "$spoof_ip/32" dev "$nic" || say error spoof-restore-ip
  else
    say spoof ip sent=no reply=no
    say spoof arp sent=no reply=no
  fi
fi

# ---- probes -----------------------------------------------------------------------------------
for target in $probes; do
  # busybox nc, not wget: the static busybox's wget crashes resolving names (glibc NSS in a static binary).
  reply=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 8 nc -w 5 "${target%:*}" "${target##*:}" 2>/run/probe.log | head -n 1)
  case "$reply" in
  HTTP/*) say probe "$target" ok ;;
  *) say probe "$target" fail "$(tail -n 1 /run/probe.log | tr -s ' \n' '  ')" ;;
  esac
done

# ---- http -------------------------------------------------------------------------------------
if [ -n "$http_ports" ]; then
  mkdir -p /www/cgi-bin
  echo "kv-guest instance-id=$instance_id ip=$lease_ip" >/www/index.html
  # busybox httpd passes CGI headers through as written; strict clients (Node) need CRLF.
  printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nbye\\n"\ntouch /run/kv-bye\n' >/www/cgi-bin/bye
  chmod 755 /www/cgi-bin/bye
  rm -f /run/kv-bye
  httpd_pids=""
  for port in $http_ports; do
    httpd -f -p "$port" -h /www &
    httpd_pids="$httpd_pids $!"
    say http port="$port" ready
  done
  reason=hold
  i=0
  while [ $i -lt $((hold * 5)) ]; do
    if [ -e /run/kv-bye ]; then
      reason=bye
      break
    fi
    usleep 200000
    i=$((i + 1))
  done
  # Let httpd finish writing the reply to /cgi-bin/bye before it is stopped.
  usleep 300000
  # shellcheck disable=SC2086 # the pids, split on purpose
  kill $httpd_pids 2>/dev/null
  say http closed reason="$reason"
fi

say "done"
umount /mnt/cidata 2>/dev/null
sync
case "$then_action" in
stay)
  say stay
  # Until the power button powers the guest off, or the host resets or ends it.
  while :; do sleep 3600; done
  ;;
reboot) reboot -f ;;
esac
poweroff -f
# Without ACPI power-off the kernel would halt and QEMU would idle: reboot instead, which QEMU
# turns into an exit under -no-reboot.
sleep 2
reboot -f
