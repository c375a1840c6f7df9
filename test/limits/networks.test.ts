import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { networkOf, peerKey } from '../../src/limits/networks.ts';

describe('peerKey: what a per-peer limit counts by', () => {
  it('keeps IPv4 as it is', () => {
    assert.equal(peerKey('203.0.113.7'), '203.0.113.7');
  });

  it('keys IPv6 by its /64, whatever the spelling', () => {
    const cases: [string, string][] = [
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:DB8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['2001:db8:1::2:3', '2001:db8:1:0::/64'],
      ['::', '0:0:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
      // Behind a NAT64 translator (64:ff9b::/96), each IPv4 client is its own peer.
      ['64:ff9b::198.51.100.7', '198.51.100.7'],
      ['64:ff9b::c633:6408', '198.51.100.8'],
      // Only the /96: another address of 64:ff9b::/64 is IPv6.
      ['64:ff9b::1:0:0:1', '64:ff9b:0:0::/64'],
    ];
    for (const [ip, key] of cases) assert.equal(peerKey(ip), key, ip);
    assert.notEqual(peerKey('2001:db8:1:2::1'), peerKey('2001:db8:1:3::1'), 'the next /64 is another peer');
  });

  it('keys an IPv4-mapped IPv6 address by its IPv4 address', () => {
    for (const ip of ['::ffff:198.51.100.7', '::FFFF:198.51.100.7', '::ffff:c633:6407', '0:0:0:0:0:ffff:198.51.100.7']) assert.equal(peerKey(ip), '198.51.100.7', ip);
  });

  it('drops a zone id', () => {
    assert.equal(peerKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(peerKey('fe80::2%wlan0'), peerKey('fe80::1'));
  });

  it('passes anything that is not an address through unchanged', () => {
    for (const text of ['', 'not an address', '1.2.3', '2001:db8::g', '[::1]', ':::', '1:2:3:4:5:6:7:8:9', 'unknown']) assert.equal(peerKey(text), text, text);
  });
});

describe('networkOf: the network of a "new network" alert', () => {
  it('groups IPv4 (mapped too, in any spelling) by /24 and IPv6 by /48, zone ids dropped', () => {
    assert.equal(networkOf('::ffff:c633:6407'), '198.51.100.0/24');
    assert.equal(networkOf('0:0:0:0:0:ffff:198.51.100.7'), '198.51.100.0/24');
    assert.equal(networkOf('fe80::1%eth0'), 'fe80:0:0::/48');
    assert.equal(networkOf('2001:DB8:00AB::1'), '2001:db8:ab::/48');
    assert.equal(networkOf('[::1]'), undefined);
  });
});
