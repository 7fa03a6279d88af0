import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { readStackConfig } from '../src/config.ts';
import { Resources, runProgram } from './harness.ts';
import { checkProgram, readStackFile } from './program-checks.ts';

const config = readStackFile('prod');
const run = await runProgram('prod');
const resources = new Resources(run.resources);

checkProgram(run, { stack: 'prod', config });

describe('prod stack: production protections', () => {
  test('when prod egresses, then each zone has its own NAT gateway', () => {
    assert.equal(resources.ofType('aws:ec2/natGateway:NatGateway').length, 3);
    const tables = resources
      .ofType('aws:ec2/routeTable:RouteTable')
      .filter((table) => table.name.includes('private'));
    assert.deepEqual(
      tables.map((table) => table.inputs.routes[0].natGatewayId),
      ['network-nat-0-id', 'network-nat-1-id', 'network-nat-2-id'],
    );
    const natSubnets = resources.ofType('aws:ec2/natGateway:NatGateway').map((nat) => nat.inputs.subnetId);
    assert.deepEqual(natSubnets, ['network-public-0-id', 'network-public-1-id', 'network-public-2-id']);
  });

  test('when prod reaches AWS APIs, then interface endpoints sit in all three zones', () => {
    for (const endpoint of resources.ofType('aws:ec2/vpcEndpoint:VpcEndpoint')) {
      if (endpoint.inputs.vpcEndpointType === 'Interface') {
        assert.equal(endpoint.inputs.subnetIds.length, 3, endpoint.name);
      }
    }
  });

  test('when the prod database is created, then Multi-AZ, deletion protection, Performance Insights and backups are on', () => {
    const db = resources.one('aws:rds/instance:Instance', 'database-postgres').inputs;
    assert.equal(db.multiAz, true);
    assert.equal(db.deletionProtection, true);
    assert.equal(db.performanceInsightsEnabled, true);
    assert.equal(db.performanceInsightsKmsKeyId, db.kmsKeyId);
    assert.ok(db.backupRetentionPeriod >= 7);
    assert.equal(db.skipFinalSnapshot, false);
    assert.equal(db.finalSnapshotIdentifier, 'ingesta-prod-final');
    assert.equal(db.applyImmediately, false);
  });

  test('when prod secrets or the NLB are deleted by mistake, then they can be recovered or refuse', () => {
    assert.equal(
      resources.one('aws:lb/loadBalancer:LoadBalancer', 'edge-nlb').inputs.enableDeletionProtection,
      true,
    );
    assert.equal(
      resources.one('aws:secretsmanager/secret:Secret', 'database-url').inputs.recoveryWindowInDays,
      30,
    );
  });

  test('when prod alarms fire, then pages reach the on-call address and tickets the team', () => {
    const subscriptions = resources
      .ofType('aws:sns/topicSubscription:TopicSubscription')
      .filter((subscription) => subscription.inputs.protocol === 'email');
    assert.deepEqual(
      subscriptions.map((subscription) => [subscription.inputs.topic, subscription.inputs.endpoint]),
      [
        ['arn:aws:sns:us-east-1:123456789012:ingesta-prod-alarms-page', 'oncall@example.com'],
        ['arn:aws:sns:us-east-1:123456789012:ingesta-prod-alarms-ticket', 'ingesta-team@example.com'],
      ],
    );
  });

  test('when a production stack leaves the protections unset, then they default to on', () => {
    pulumi.runtime.setAllConfig({
      'ingesta:production': 'true',
      'ingesta:network': JSON.stringify({ availabilityZones: ['a', 'b', 'c'] }),
      'ingesta:edge': JSON.stringify({ issuer: 'i', audience: 'a', jwksUrl: 'j', tokenUrl: 't' }),
      'ingesta:github': JSON.stringify({ repository: 'o/r' }),
    });
    const defaults = readStackConfig();
    assert.equal(defaults.network.natGateways, 'perAz');
    assert.equal(defaults.database.multiAz, true);
    assert.equal(defaults.database.deletionProtection, true);
    assert.equal(defaults.database.performanceInsights, true);
    assert.ok(defaults.database.backupRetentionDays >= 7);
  });
});
