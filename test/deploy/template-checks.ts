import { isRecord, walk } from './cloudformation-template.js'
import type { Template } from './cloudformation-template.js'

// Each check returns a list of problems (empty when the template passes), so a test can show
// them all at once, and can also feed a deliberately broken copy to prove the check bites.

const PSEUDO_PARAMETERS = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'])

// The attributes Fn::GetAtt may ask of each resource type this template uses; a type missing
// here fails the check, so a new one gets looked up rather than assumed.
const ATTRIBUTES: Record<string, string[]> = {
  'AWS::EC2::EIP': ['AllocationId', 'PublicIp'],
  'AWS::EC2::Instance': ['AvailabilityZone', 'PrivateDnsName', 'PrivateIp', 'PublicDnsName', 'PublicIp', 'InstanceId', 'VpcId'],
  'AWS::EC2::LaunchTemplate': ['DefaultVersionNumber', 'LatestVersionNumber', 'LaunchTemplateId'],
  'AWS::EC2::SecurityGroup': ['GroupId', 'VpcId'],
  'AWS::EC2::Subnet': ['AvailabilityZone', 'CidrBlock', 'SubnetId', 'VpcId'],
  'AWS::EC2::VPC': ['CidrBlock', 'DefaultSecurityGroup', 'VpcId'],
  'AWS::EC2::Volume': ['VolumeId'],
  'AWS::ElasticLoadBalancingV2::LoadBalancer': ['CanonicalHostedZoneID', 'DNSName', 'LoadBalancerArn', 'LoadBalancerFullName', 'LoadBalancerName', 'SecurityGroups'],
  'AWS::IAM::InstanceProfile': ['Arn'],
  'AWS::IAM::Role': ['Arn', 'RoleId'],
  'AWS::Logs::LogGroup': ['Arn'],
  'AWS::S3::Bucket': ['Arn', 'DomainName', 'RegionalDomainName', 'WebsiteURL']
}

/** The names a Fn::Sub string refers to: `${Name}` and `${Res.Attr}`; `${!Literal}` is text. */
export function subReferences (text: string): string[] {
  return [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1] ?? '').filter((name) => !name.startsWith('!'))
}

interface Context { conditions: Set<string>, where: string }

/**
 * Every Ref, Fn::GetAtt and Fn::Sub variable names a parameter, a resource (with an attribute
 * it has) or a pseudo-parameter; every condition used exists; and a conditional resource is
 * only referred to where its condition holds (inside Fn::If on it, or from a resource or
 * output with the same condition), as CloudFormation requires at deploy time.
 */
export function referenceProblems (t: Template): string[] {
  const problems: string[] = []
  const conditionNames = new Set(Object.keys(t.Conditions ?? {}))
  const resourceCondition = (name: string): string | undefined => t.Resources[name]?.Condition

  const checkName = (name: string, ctx: Context, extra: Set<string> = new Set()): void => {
    if (extra.has(name) || PSEUDO_PARAMETERS.has(name) || name in t.Parameters) return
    const [resource = '', attribute] = name.split(/\.(.*)/s)
    const target = t.Resources[resource]
    if (target === undefined) {
      problems.push(`${ctx.where}: '${name}' is neither a parameter, a resource nor a pseudo-parameter`)
      return
    }
    if (attribute !== undefined) {
      const known = ATTRIBUTES[target.Type]
      if (known === undefined) problems.push(`${ctx.where}: no attribute table for ${target.Type} (add it to template-checks.ts)`)
      else if (!known.includes(attribute)) problems.push(`${ctx.where}: ${target.Type} ${resource} has no attribute ${attribute}`)
    }
    const needed = resourceCondition(resource)
    if (needed !== undefined && !ctx.conditions.has(needed)) {
      problems.push(`${ctx.where}: ${resource} exists only under condition ${needed}, which does not hold here`)
    }
  }

  const visit = (node: unknown, ctx: Context, extra?: Set<string>): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, ctx, extra)
      return
    }
    if (!isRecord(node)) return
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const key = keys[0] ?? ''
      const arg = node[key]
      if (key === 'Ref') {
        if (typeof arg !== 'string') problems.push(`${ctx.where}: Ref of a non-string`)
        else checkName(arg, ctx, extra)
        return
      }
      if (key === 'Fn::GetAtt') {
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string' || typeof arg[1] !== 'string') problems.push(`${ctx.where}: Fn::GetAtt needs [resource, attribute]`)
        else if (!(arg[0] in t.Resources)) problems.push(`${ctx.where}: Fn::GetAtt of unknown resource ${arg[0]}`)
        else checkName(`${arg[0]}.${arg[1]}`, ctx)
        return
      }
      if (key === 'Fn::Sub') {
        const [text, vars] = Array.isArray(arg) ? [arg[0], arg[1]] : [arg, undefined]
        if (typeof text !== 'string') {
          problems.push(`${ctx.where}: Fn::Sub of a non-string`)
          return
        }
        const local = new Set(isRecord(vars) ? Object.keys(vars) : [])
        if (isRecord(vars)) visit(vars, ctx, extra)
        for (const name of subReferences(text)) checkName(name, ctx, local)
        return
      }
      if (key === 'Fn::If') {
        if (!Array.isArray(arg) || arg.length !== 3 || typeof arg[0] !== 'string') {
          problems.push(`${ctx.where}: Fn::If needs [condition, then, else]`)
          return
        }
        const condition = arg[0]
        if (!conditionNames.has(condition)) problems.push(`${ctx.where}: Fn::If on unknown condition ${condition}`)
        visit(arg[1], { ...ctx, conditions: new Set([...ctx.conditions, condition]) }, extra)
        visit(arg[2], ctx, extra)
        return
      }
      if (key === 'Condition' && typeof arg === 'string' && !conditionNames.has(arg)) {
        problems.push(`${ctx.where}: unknown condition ${arg}`)
        return
      }
    }
    for (const value of Object.values(node)) visit(value, ctx, extra)
  }

  for (const [name, body] of Object.entries(t.Conditions ?? {})) visit(body, { conditions: new Set(), where: `Conditions.${name}` })
  for (const [name, resource] of Object.entries(t.Resources)) {
    if (resource.Condition !== undefined && !conditionNames.has(resource.Condition)) problems.push(`Resources.${name}: unknown condition ${resource.Condition}`)
    const conditions = new Set(resource.Condition === undefined ? [] : [resource.Condition])
    const dependsOn = resource.DependsOn === undefined ? [] : ([] as unknown[]).concat(resource.DependsOn)
    for (const dep of dependsOn) {
      if (typeof dep !== 'string' || !(dep in t.Resources)) problems.push(`Resources.${name}: DependsOn unknown resource ${String(dep)}`)
    }
    visit(resource.Properties, { conditions, where: `Resources.${name}` })
  }
  for (const [name, output] of Object.entries(t.Outputs ?? {})) {
    if (output.Condition !== undefined && !conditionNames.has(output.Condition)) problems.push(`Outputs.${name}: unknown condition ${output.Condition}`)
    visit(output.Value, { conditions: new Set(output.Condition === undefined ? [] : [output.Condition]), where: `Outputs.${name}` })
  }
  return problems
}

export interface IngressRule { where: string, group: unknown, protocol: unknown, from: unknown, to: unknown, cidr: unknown, cidrV6: unknown, sourceGroup: unknown }

/** Every ingress rule: inline in a security group, or its own AWS::EC2::SecurityGroupIngress. */
export function ingressRules (t: Template): IngressRule[] {
  const rules: IngressRule[] = []
  const add = (where: string, group: unknown, rule: Record<string, unknown>): void => {
    rules.push({ where, group, protocol: rule.IpProtocol, from: rule.FromPort, to: rule.ToPort, cidr: rule.CidrIp, cidrV6: rule.CidrIpv6, sourceGroup: rule.SourceSecurityGroupId ?? rule.SourceSecurityGroupName })
  }
  for (const [name, resource] of Object.entries(t.Resources)) {
    const p = resource.Properties ?? {}
    if (resource.Type === 'AWS::EC2::SecurityGroup' && Array.isArray(p.SecurityGroupIngress)) {
      for (const [i, rule] of p.SecurityGroupIngress.entries()) if (isRecord(rule)) add(`Resources.${name}.SecurityGroupIngress[${i}]`, { Ref: name }, rule)
    }
    if (resource.Type === 'AWS::EC2::SecurityGroupIngress') add(`Resources.${name}`, p.GroupId, p)
  }
  return rules
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
const WORLD = new Set(['0.0.0.0/0', '::/0'])

export interface IngressPolicy {
  /** The ports (a literal or {Ref: param}) that may be open to a CIDR, with the CIDR parameter allowed for each. */
  public: Array<{ port: unknown, cidrParameter: string, group?: unknown }>
  /** Ports that must only admit security groups, never a CIDR. */
  internalPorts: number[]
}

/**
 * A CIDR rule is allowed only for a (port, CIDR parameter) pair in `policy.public`; no rule
 * may name 0.0.0.0/0 or ::/0 literally, cover all protocols or span a range of ports with a
 * CIDR; internal ports admit security groups only.
 */
export function ingressProblems (t: Template, policy: IngressPolicy): string[] {
  const problems: string[] = []
  for (const rule of ingressRules(t)) {
    const cidrs = [rule.cidr, rule.cidrV6].filter((c) => c !== undefined)
    const portRange = `${JSON.stringify(rule.from)}-${JSON.stringify(rule.to)}`
    if (String(rule.protocol) === '-1' && cidrs.length > 0) problems.push(`${rule.where}: all protocols open to ${JSON.stringify(cidrs)}`)
    for (const cidr of cidrs) {
      if (typeof cidr === 'string' && WORLD.has(cidr)) problems.push(`${rule.where}: port ${portRange} open to ${cidr}`)
      if (!sameJson(rule.from, rule.to)) {
        problems.push(`${rule.where}: a port range (${portRange}) open to a CIDR`)
        continue
      }
      const allowed = policy.public.some((p) => sameJson(p.port, rule.from) && sameJson(cidr, { Ref: p.cidrParameter }) && (p.group === undefined || sameJson(p.group, rule.group)))
      if (!allowed) problems.push(`${rule.where}: port ${portRange} open to ${JSON.stringify(cidr)}, which is not one of the public ports`)
    }
    if (cidrs.length === 0 && rule.sourceGroup === undefined) problems.push(`${rule.where}: neither a CIDR nor a source security group`)
    for (const port of policy.internalPorts) {
      const from = typeof rule.from === 'number' ? rule.from : NaN
      const to = typeof rule.to === 'number' ? rule.to : NaN
      if (cidrs.length > 0 && from <= port && port <= to) problems.push(`${rule.where}: internal port ${port} admits a CIDR`)
    }
  }
  for (const p of policy.public) {
    const param = t.Parameters[p.cidrParameter]
    if (param === undefined) problems.push(`policy names unknown parameter ${p.cidrParameter}`)
  }
  return problems
}

export interface MetricSpec { namespace: string, metricName: string, dimensions: unknown }

/** The metrics an alarm watches, directly or through the MetricStat entries of its Metrics. */
export function alarmMetrics (properties: Record<string, unknown>): MetricSpec[] {
  const out: MetricSpec[] = []
  if (typeof properties.MetricName === 'string') out.push({ namespace: String(properties.Namespace), metricName: properties.MetricName, dimensions: properties.Dimensions })
  if (Array.isArray(properties.Metrics)) {
    for (const query of properties.Metrics) {
      const metric = isRecord(query) && isRecord(query.MetricStat) && isRecord(query.MetricStat.Metric) ? query.MetricStat.Metric : undefined
      if (metric !== undefined) out.push({ namespace: String(metric.Namespace), metricName: String(metric.MetricName), dimensions: metric.Dimensions })
    }
  }
  return out
}

export interface ScalingSummary { alarm: string, policy: string, group: string, direction: 'out' | 'in' }

/**
 * Every alarm watches `namespace`/`metricName` by the Cluster dimension (the stack name) and
 * acts on a scaling policy of an Auto Scaling group in the template. Returns the problems and,
 * per alarm, which way its policy scales.
 */
export function scalingProblems (t: Template, namespace: string, metricName: string): { problems: string[], summary: ScalingSummary[] } {
  const problems: string[] = []
  const summary: ScalingSummary[] = []
  const clusterDimension = [{ Name: 'Cluster', Value: { Ref: 'AWS::StackName' } }]
  for (const [name, resource] of Object.entries(t.Resources)) {
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue
    const p = resource.Properties ?? {}
    const metrics = alarmMetrics(p)
    if (!metrics.some((m) => m.namespace === namespace && m.metricName === metricName && sameJson(m.dimensions, clusterDimension))) {
      problems.push(`${name}: does not watch ${namespace}/${metricName} by Cluster=stack name (watches ${JSON.stringify(metrics.map((m) => `${m.namespace}/${m.metricName}`))})`)
    }
    const actions = Array.isArray(p.AlarmActions) ? p.AlarmActions : []
    if (actions.length === 0) problems.push(`${name}: no AlarmActions`)
    for (const action of actions) {
      const policyName = isRecord(action) && typeof action.Ref === 'string' ? action.Ref : undefined
      const policy = policyName === undefined ? undefined : t.Resources[policyName]
      if (policyName === undefined || policy?.Type !== 'AWS::AutoScaling::ScalingPolicy') {
        problems.push(`${name}: action ${JSON.stringify(action)} is not a scaling policy of this template`)
        continue
      }
      const pp = policy.Properties ?? {}
      const group = isRecord(pp.AutoScalingGroupName) && typeof pp.AutoScalingGroupName.Ref === 'string' ? pp.AutoScalingGroupName.Ref : ''
      if (t.Resources[group]?.Type !== 'AWS::AutoScaling::AutoScalingGroup') problems.push(`${policyName}: not attached to an Auto Scaling group of this template`)
      const adjustments = Array.isArray(pp.StepAdjustments)
        ? pp.StepAdjustments.map((s) => (isRecord(s) ? Number(s.ScalingAdjustment) : NaN))
        : [Number(pp.ScalingAdjustment)]
      const scalesOut = pp.AdjustmentType === 'ChangeInCapacity' && adjustments.every((a) => a > 0)
      const scalesIn = (pp.AdjustmentType === 'ExactCapacity' && adjustments.every((a) => a === 0)) || (pp.AdjustmentType === 'ChangeInCapacity' && adjustments.every((a) => a < 0))
      if (!scalesOut && !scalesIn) problems.push(`${policyName}: neither scales out (positive changes) nor in (negative changes or exactly 0)`)
      else summary.push({ alarm: name, policy: policyName, group, direction: scalesOut ? 'out' : 'in' })
    }
  }
  return { problems, summary }
}

/** The user data shell scripts (the text/x-shellscript part of a multi-part one), `${…}` filled in. */
export function userDataScripts (t: Template): Array<{ resource: string, script: string, raw: string }> {
  const out: Array<{ resource: string, script: string, raw: string }> = []
  for (const [name, resource] of Object.entries(t.Resources)) {
    for (const { value, path } of walk(resource.Properties)) {
      if (!path.endsWith('UserData') || !isRecord(value)) continue
      const base64 = value['Fn::Base64']
      const sub = isRecord(base64) ? base64['Fn::Sub'] : undefined
      if (typeof sub !== 'string') continue
      // Placeholders that are valid shell words; ${!x} is Fn::Sub's escape for a literal ${x}.
      const filled = sub.replace(/\$\{([^}]*)\}/g, (_m, n: string) => (n.startsWith('!') ? `\${${n.slice(1)}}` : `SUB_${n.replace(/[^A-Za-z0-9]/g, '_')}`))
      const start = filled.indexOf('#!/bin/bash')
      const end = filled.indexOf('\n--==', start)
      out.push({ resource: name, script: filled.slice(start, end < 0 ? undefined : end + 1), raw: sub })
    }
  }
  return out
}
