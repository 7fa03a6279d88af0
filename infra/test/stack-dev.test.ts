import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Resources, runProgram } from './harness.ts';
import { checkProgram, readStackFile } from './program-checks.ts';

const config = readStackFile('dev');
const run = await runProgram('dev');
const resources = new Resources(run.resources);

checkProgram(run, { stack: 'dev', config });

describe('dev stack: cost-saving choices, no production protections', () => {
  test('when dev egresses, then one NAT gateway serves all three private route tables', () => {
    assert.equal(resources.ofType('aws:ec2/natGateway:NatGateway').length, 1);
    assert.equal(resources.ofType('aws:ec2/eip:Eip').length, 1);
    const tables = resources
      .ofType('aws:ec2/routeTable:RouteTable')
      .filter((table) => table.name.includes('private'));
    assert.deepEqual(
      tables.map((table) => table.inputs.routes[0].natGatewayId),
      ['network-nat-0-id', 'network-nat-0-id', 'network-nat-0-id'],
    );
  });

  test('when dev reaches AWS APIs, then interface endpoints sit in one zone only', () => {
    for (const endpoint of resources.ofType('aws:ec2/vpcEndpoint:VpcEndpoint')) {
      if (endpoint.inputs.vpcEndpointType === 'Interface') {
        assert.deepEqual(endpoint.inputs.subnetIds, ['network-private-0-id'], endpoint.name);
      }
    }
  });

  test('when the dev database is created, then it is single-AZ, deletable, without Performance Insights', () => {
    const db = resources.one('aws:rds/instance:Instance', 'database-postgres').inputs;
    assert.equal(db.multiAz, false);
    assert.equal(db.deletionProtection, false);
    assert.equal(db.performanceInsightsEnabled, false);
    assert.equal(db.skipFinalSnapshot, true);
    assert.equal(db.finalSnapshotIdentifier, undefined);
    assert.equal(db.backupRetentionPeriod, 1);
    assert.equal(db.applyImmediately, true);
  });

  test('when the dev NLB is created, then it can be deleted', () => {
    assert.equal(
      resources.one('aws:lb/loadBalancer:LoadBalancer', 'edge-nlb').inputs.enableDeletionProtection,
      false,
    );
  });

  test('when dev is deployed from GitHub, then only the develop branch and staging environment may', () => {
    const trust = JSON.parse(resources.one('aws:iam/role:Role', 'deploy-github').inputs.assumeRolePolicy);
    assert.deepEqual(trust.Statement[0].Condition.StringEquals['token.actions.githubusercontent.com:sub'], [
      'repo:example-org/ingesta:ref:refs/heads/develop',
      'repo:example-org/ingesta:environment:staging',
    ]);
  });
});
