#!/bin/sh
# udhcpc event script of the kubevisor test guest (installed as /etc/udhcpc.sh). It applies a lease
# the way a cloud image's DHCP client does — address, MTU (option 26), classless static routes
# (option 121) or else the router (option 3), DNS — and records the lease in /run/kv-lease for
# /init to report. udhcpc passes the lease in the environment: ip, mask (prefix length), router,
# mtu, dns, domain, search (option 119), staticroutes ("<net>/<len> <gw> ..."), interface.
# shellcheck disable=SC2154 # the variables above come from udhcpc

case "$1" in
deconfig)
  ip -4 addr flush dev "$interface"
  ip link set "$interface" up
  ;;
bound | renew)
  ip -4 addr flush dev "$interface"
  ip addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$interface"
  [ -z "$mtu" ] || ip link set dev "$interface" mtu "$mtu"
  route_errors=""
  add_route() { # <dest> <gateway, 0.0.0.0 = on-link>
    if [ "$2" = 0.0.0.0 ]; then
      ip route replace "$1" dev "$interface" && return
    else
      # A gateway outside the leased subnet (e.g. a link-local one) needs onlink.
      ip route replace "$1" via "$2" dev "$interface" 2>/dev/null ||
        ip route replace "$1" via "$2" dev "$interface" onlink && return
    fi
    route_errors="$route_errors $1/$2"
  }
  if [ -n "$staticroutes" ]; then
    # RFC 3442: a client that receives option 121 ignores the router option.
    # shellcheck disable=SC2086 # split the list into dest/gateway pairs
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      add_route "$1" "$2"
      shift 2
    done
  elif [ -n "$router" ]; then
    add_route default "${router%% *}"
  fi
  : >/etc/resolv.conf
  # A search list (option 119) is what resolv.conf's "search" means; the domain (option 15) is the fallback.
  if [ -n "$search" ]; then echo "search $search" >>/etc/resolv.conf; elif [ -n "$domain" ]; then echo "search $domain" >>/etc/resolv.conf; fi
  for server in $dns; do echo "nameserver $server" >>/etc/resolv.conf; done

  read -r up _ </proc/uptime
  s=${up%.*}
  f=${up#*.}
  f=${f#0}
  {
    echo "ip='$ip'"
    echo "mask='$mask'"
    echo "router='${router%% *}'"
    echo "mtu='$mtu'"
    echo "dns='$dns'"
    echo "domain='$domain'"
    echo "search='$search'"
    echo "staticroutes='$staticroutes'"
    echo "route_errors='${route_errors# }'"
    echo "bound_ms=$((s * 1000 + f * 10))"
  } >/run/kv-lease
  ;;
esac
exit 0
