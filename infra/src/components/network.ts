import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { NetworkConfig } from '../config.ts';

export interface NetworkArgs extends NetworkConfig {
  prefix: string;
  region: string;
}

/** Interface endpoints the pods and nodes use instead of NAT (service name suffixes). */
export const interfaceEndpointServices = ['sqs', 'sns', 'sts', 'ecr.api', 'ecr.dkr', 'logs', 'monitoring'];

/**
 * Subnet plan of a /16: public /24s (NAT, nothing else), private /19s for nodes and pods (the VPC
 * CNI gives every pod a VPC address, so these are the large ones), isolated /24s for the database.
 */
export function subnetPlan(vpcCidr: string): { public: string[]; private: string[]; database: string[] } {
  const match = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(vpcCidr);
  if (!match) throw new Error(`network.vpcCidr must be a /16 like 10.40.0.0/16, got ${vpcCidr}`);
  const base = `${match[1]}.${match[2]}`;
  return {
    public: [0, 1, 2].map((i) => `${base}.${i}.0/24`),
    private: [32, 64, 96].map((octet) => `${base}.${octet}.0/19`),
    database: [16, 17, 18].map((octet) => `${base}.${octet}.0/24`),
  };
}

/**
 * VPC over three availability zones: public subnets hold only the NAT gateways, private subnets the
 * EKS nodes and pods (tagged for internal load balancers), isolated subnets the database (no route
 * out at all). AWS APIs are reached through VPC endpoints, so SNS/SQS/STS/ECR/CloudWatch traffic
 * stays off the NAT.
 */
export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly vpcCidr: pulumi.Output<string>;
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly databaseSubnetIds: pulumi.Output<string>[];
  readonly databaseSubnetCidrs: string[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:network:Network', name, {}, opts);
    const parent = { parent: this };
    const plan = subnetPlan(args.vpcCidr);
    const zones = args.availabilityZones;

    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: args.vpcCidr,
        enableDnsHostnames: true,
        enableDnsSupport: true,
        tags: { Name: args.prefix },
      },
      parent,
    );
    // The default security group allows all traffic between its members: strip every rule.
    new aws.ec2.DefaultSecurityGroup(`${name}-default-sg`, { vpcId: vpc.id }, parent);

    const internetGateway = new aws.ec2.InternetGateway(
      `${name}-igw`,
      { vpcId: vpc.id, tags: { Name: args.prefix } },
      parent,
    );

    const publicRouteTable = new aws.ec2.RouteTable(
      `${name}-public`,
      {
        vpcId: vpc.id,
        routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: internetGateway.id }],
        tags: { Name: `${args.prefix}-public` },
      },
      parent,
    );

    const publicSubnets = zones.map((zone, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-public-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: zone,
          cidrBlock: plan.public[i]!,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${args.prefix}-public-${zone}`, 'kubernetes.io/role/elb': '1' },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-public-${i}`,
        { subnetId: subnet.id, routeTableId: publicRouteTable.id },
        parent,
      );
      return subnet;
    });

    // dev: one NAT gateway shared by all zones (a zone outage cuts egress); prod: one per zone.
    const natCount = args.natGateways === 'perAz' ? zones.length : 1;
    const natGateways = publicSubnets.slice(0, natCount).map((subnet, i) => {
      const eip = new aws.ec2.Eip(
        `${name}-nat-${i}`,
        { domain: 'vpc', tags: { Name: `${args.prefix}-nat-${i}` } },
        parent,
      );
      return new aws.ec2.NatGateway(
        `${name}-nat-${i}`,
        { allocationId: eip.id, subnetId: subnet.id, tags: { Name: `${args.prefix}-nat-${i}` } },
        { parent: this, dependsOn: [internetGateway] },
      );
    });

    const privateRouteTables = zones.map((zone, i) => {
      const nat = natGateways[Math.min(i, natGateways.length - 1)]!;
      return new aws.ec2.RouteTable(
        `${name}-private-${i}`,
        {
          vpcId: vpc.id,
          routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }],
          tags: { Name: `${args.prefix}-private-${zone}` },
        },
        parent,
      );
    });

    const privateSubnets = zones.map((zone, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: zone,
          cidrBlock: plan.private[i]!,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${args.prefix}-private-${zone}`, 'kubernetes.io/role/internal-elb': '1' },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-private-${i}`,
        { subnetId: subnet.id, routeTableId: privateRouteTables[i]!.id },
        parent,
      );
      return subnet;
    });

    // The database tier has a route table with the local route only: nothing in it reaches out.
    const databaseRouteTable = new aws.ec2.RouteTable(
      `${name}-database`,
      { vpcId: vpc.id, tags: { Name: `${args.prefix}-database` } },
      parent,
    );
    const databaseSubnets = zones.map((zone, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-database-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: zone,
          cidrBlock: plan.database[i]!,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${args.prefix}-database-${zone}` },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-database-${i}`,
        { subnetId: subnet.id, routeTableId: databaseRouteTable.id },
        parent,
      );
      return subnet;
    });

    const endpointSecurityGroup = new aws.ec2.SecurityGroup(
      `${name}-endpoints`,
      {
        vpcId: vpc.id,
        description: 'VPC interface endpoints: HTTPS from inside the VPC only',
        ingress: [
          {
            protocol: 'tcp',
            fromPort: 443,
            toPort: 443,
            cidrBlocks: [args.vpcCidr],
            description: 'HTTPS from the VPC',
          },
        ],
        tags: { Name: `${args.prefix}-endpoints` },
      },
      parent,
    );
    // Interface endpoints cost per zone and hour: a single-NAT (dev) network places them in one zone.
    const endpointSubnets = args.natGateways === 'perAz' ? privateSubnets : privateSubnets.slice(0, 1);
    for (const service of interfaceEndpointServices) {
      new aws.ec2.VpcEndpoint(
        `${name}-${service.replace('.', '-')}`,
        {
          vpcId: vpc.id,
          serviceName: `com.amazonaws.${args.region}.${service}`,
          vpcEndpointType: 'Interface',
          privateDnsEnabled: true,
          subnetIds: endpointSubnets.map((subnet) => subnet.id),
          securityGroupIds: [endpointSecurityGroup.id],
          tags: { Name: `${args.prefix}-${service}` },
        },
        parent,
      );
    }
    // ECR serves image layers from S3: the gateway endpoint is free and keeps pulls off the NAT.
    new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      {
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${args.region}.s3`,
        vpcEndpointType: 'Gateway',
        routeTableIds: privateRouteTables.map((table) => table.id),
        tags: { Name: `${args.prefix}-s3` },
      },
      parent,
    );

    this.vpcId = vpc.id;
    this.vpcCidr = vpc.cidrBlock;
    this.publicSubnetIds = publicSubnets.map((subnet) => subnet.id);
    this.privateSubnetIds = privateSubnets.map((subnet) => subnet.id);
    this.databaseSubnetIds = databaseSubnets.map((subnet) => subnet.id);
    this.databaseSubnetCidrs = plan.database;
    this.registerOutputs({ vpcId: this.vpcId, vpcCidr: this.vpcCidr });
  }
}
