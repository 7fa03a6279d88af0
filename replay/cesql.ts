/**
 * A documented subset of CloudEvents SQL (CESQL v1), for replay filters richer than the fixed ones.
 * No maintained JavaScript implementation exists; this one covers what filtering replays needs:
 *
 *   expression := or;  or := and (OR and)*;  and := not (AND not)*;  not := NOT not | predicate
 *   predicate  := value [ (= | != | <> | < | <= | > | >=) value | [NOT] LIKE 'pattern' | [NOT] IN (value, …) ]
 *   value      := ( expression ) | EXISTS attribute | attribute | 'string' | "string" | integer | TRUE | FALSE
 *
 * Keywords are case-insensitive; attributes are context attributes (lower-case names), never `data`.
 * As CESQL says, a missing attribute is an error that makes the whole expression false. Comparing a
 * string with an integer casts the string (an error, so false, when it is not an integer). LIKE
 * takes `%` (any run) and `_` (one character), `\` escapes them.
 */

type Value = string | number | boolean;
type Node =
  | { kind: 'literal'; value: Value }
  | { kind: 'attribute'; name: string }
  | { kind: 'exists'; name: string }
  | { kind: 'not'; operand: Node }
  | { kind: 'logic'; op: 'AND' | 'OR'; left: Node; right: Node }
  | { kind: 'compare'; op: string; left: Node; right: Node }
  | { kind: 'like'; negated: boolean; operand: Node; pattern: RegExp }
  | { kind: 'in'; negated: boolean; operand: Node; list: Node[] };

export class CesqlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CesqlError';
  }
}

/** Raised during evaluation (a missing attribute, a failed cast): the expression is false. */
class EvaluationError extends Error {}

const tokenPattern =
  /\s*(?:(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|!=|<>|=|<|>|\(|\)|,))/y;

interface Token {
  type: 'number' | 'string' | 'word' | 'symbol';
  text: string;
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  tokenPattern.lastIndex = 0;
  while (tokenPattern.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(tokenPattern.lastIndex))) break;
    const at = tokenPattern.lastIndex;
    const match = tokenPattern.exec(source);
    if (!match)
      throw new CesqlError(
        `unexpected character at position ${at}: ${JSON.stringify(source.slice(at, at + 10))}`,
      );
    const [, number, single, double, word, symbol] = match;
    if (number !== undefined) tokens.push({ type: 'number', text: number });
    else if (single !== undefined || double !== undefined) {
      tokens.push({ type: 'string', text: (single ?? double ?? '').replace(/\\(.)/g, '$1') });
    } else if (word !== undefined) tokens.push({ type: 'word', text: word });
    else tokens.push({ type: 'symbol', text: symbol as string });
  }
  return tokens;
}

function likePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === '\\' && i + 1 < pattern.length)
      source += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (char === '%') source += '.*';
    else if (char === '_') source += '.';
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** Parses a CESQL expression of the subset above; throws CesqlError naming what is wrong. */
export function parseCesql(source: string): (attributes: Record<string, unknown>) => boolean {
  const tokens = tokenize(source);
  let position = 0;
  const peek = () => tokens[position];
  const keyword = (word: string) => {
    const token = peek();
    if (token?.type === 'word' && token.text.toUpperCase() === word) {
      position++;
      return true;
    }
    return false;
  };
  const symbol = (text: string) => {
    if (peek()?.type === 'symbol' && peek()?.text === text) {
      position++;
      return true;
    }
    return false;
  };
  const expect = (text: string) => {
    if (!symbol(text)) throw new CesqlError(`expected "${text}" at token ${position + 1}`);
  };

  const orExpression = (): Node => {
    let left = andExpression();
    while (keyword('OR')) left = { kind: 'logic', op: 'OR', left, right: andExpression() };
    return left;
  };
  const andExpression = (): Node => {
    let left = notExpression();
    while (keyword('AND')) left = { kind: 'logic', op: 'AND', left, right: notExpression() };
    return left;
  };
  const notExpression = (): Node =>
    keyword('NOT') ? { kind: 'not', operand: notExpression() } : predicate();
  const predicate = (): Node => {
    const left = value();
    const negated = keyword('NOT');
    if (keyword('LIKE')) {
      const pattern = peek();
      if (pattern?.type !== 'string') throw new CesqlError('LIKE takes a string pattern');
      position++;
      return { kind: 'like', negated, operand: left, pattern: likePattern(pattern.text) };
    }
    if (keyword('IN')) {
      expect('(');
      const list = [value()];
      while (symbol(',')) list.push(value());
      expect(')');
      return { kind: 'in', negated, operand: left, list };
    }
    if (negated) throw new CesqlError('NOT here must be followed by LIKE or IN');
    const op = peek();
    if (op?.type === 'symbol' && ['=', '!=', '<>', '<', '<=', '>', '>='].includes(op.text)) {
      position++;
      return { kind: 'compare', op: op.text, left, right: value() };
    }
    return left;
  };
  const value = (): Node => {
    const token = peek();
    if (!token) throw new CesqlError('the expression ends too early');
    if (symbol('(')) {
      const inner = orExpression();
      expect(')');
      return inner;
    }
    position++;
    if (token.type === 'number') return { kind: 'literal', value: Number(token.text) };
    if (token.type === 'string') return { kind: 'literal', value: token.text };
    if (token.type === 'word') {
      const upper = token.text.toUpperCase();
      if (upper === 'TRUE' || upper === 'FALSE') return { kind: 'literal', value: upper === 'TRUE' };
      if (upper === 'EXISTS') {
        const name = peek();
        if (name?.type !== 'word') throw new CesqlError('EXISTS takes an attribute name');
        position++;
        return { kind: 'exists', name: name.text.toLowerCase() };
      }
      if (!/^[a-z0-9]+$/i.test(token.text)) throw new CesqlError(`"${token.text}" is not an attribute name`);
      return { kind: 'attribute', name: token.text.toLowerCase() };
    }
    throw new CesqlError(`unexpected "${token.text}"`);
  };

  const root = orExpression();
  if (position < tokens.length)
    throw new CesqlError(`unexpected "${tokens[position]?.text}" after the expression`);

  const evaluate = (node: Node, attributes: Record<string, unknown>): Value => {
    switch (node.kind) {
      case 'literal':
        return node.value;
      case 'attribute': {
        const found = attributes[node.name];
        if (typeof found === 'string' || typeof found === 'number' || typeof found === 'boolean')
          return found;
        throw new EvaluationError(`missing ${node.name}`);
      }
      case 'exists':
        return Object.hasOwn(attributes, node.name) && attributes[node.name] !== null;
      case 'not':
        return !asBoolean(evaluate(node.operand, attributes));
      case 'logic': {
        const left = asBoolean(evaluate(node.left, attributes));
        if (node.op === 'AND' ? !left : left) return left;
        return asBoolean(evaluate(node.right, attributes));
      }
      case 'like': {
        const matched = node.pattern.test(String(evaluate(node.operand, attributes)));
        return node.negated ? !matched : matched;
      }
      case 'in': {
        const operand = evaluate(node.operand, attributes);
        const found = node.list.some((item) => compare('=', operand, evaluate(item, attributes)));
        return node.negated ? !found : found;
      }
      case 'compare':
        return compare(node.op, evaluate(node.left, attributes), evaluate(node.right, attributes));
    }
  };
  return (attributes) => {
    try {
      return asBoolean(evaluate(root, attributes));
    } catch (err) {
      if (err instanceof EvaluationError) return false;
      throw err;
    }
  };
}

function asBoolean(value: Value): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new EvaluationError('not a boolean');
}

function compare(op: string, left: Value, right: Value): boolean {
  let a = left;
  let b = right;
  if (typeof a !== typeof b) {
    const cast = (v: Value) => {
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
      throw new EvaluationError('cannot cast');
    };
    a = cast(a);
    b = cast(b);
  }
  switch (op) {
    case '=':
      return a === b;
    case '!=':
    case '<>':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    default:
      return a >= b;
  }
}
