/**
 * A seeded, reproducible generator of TPC-H data (benchmarks.md section 5), faithful to the
 * TPC-H specification's section 4.2.3 and to `dbgen`'s distributions (`dists.dss`), at any scale
 * factor (the benchmark uses SF 0.01: 5 regions, 25 nations, 100 suppliers, 2000 parts, 8000
 * partsupp rows, 1500 customers, 15000 orders, about 60000 lineitems). It does not reproduce
 * `dbgen`'s random streams bit for bit (so answers differ from the published SF 0.01 answer
 * set), but every column has the spec's domain and distribution:
 *
 * - region/nation: the fixed tables (names, nation -> region).
 * - supplier: `Supplier#000000001`..., nation uniform, phone `CC-ddd-ddd-dddd` with country code
 *   nationkey + 10, acctbal in [-999.99, 9999.99], comment from the text pool; SF * 5 rows get
 *   `Customer ...Complaints` and SF * 5 `Customer ...Recommends` at a random position (Q16).
 *   At SF 0.01 that is 0.05 rows; we round up to 1 of each so Q16's anti-join has work to do.
 * - part: name = 5 distinct colours of the 92, mfgr `Manufacturer#M` (M in 1..5), brand
 *   `Brand#MN` (N in 1..5), type = 3 syllables (150 types), size 1..50, container = 2
 *   syllables (40 containers), retailprice = (90000 + ((partkey / 10) mod 20001) + 100 *
 *   (partkey mod 1000)) / 100.
 * - partsupp: 4 suppliers per part, suppkey = (partkey + i * (S / 4 + (partkey - 1) / S)) mod S + 1,
 *   availqty 1..9999, supplycost 1.00..1000.00.
 * - customer: nation uniform, phone by nation, acctbal in [-999.99, 9999.99], mktsegment of 5.
 * - orders: sparse keys (8 of every 32), custkey uniform over keys not divisible by 3,
 *   orderdate uniform in [1992-01-01, 1998-12-31 - 151 days], priority of 5, clerk of SF*1000,
 *   shippriority 0; totalprice = sum over its lines of extendedprice * (1 + tax) * (1 - discount)
 *   (computed in cents with dbgen's truncations); orderstatus F / O / P from the line statuses.
 * - lineitem: 1..7 lines per order, partkey uniform, suppkey one of the part's 4 suppliers,
 *   quantity 1..50, extendedprice = quantity * retailprice, discount 0.00..0.10, tax
 *   0.00..0.08, shipdate = orderdate + 1..121, commitdate = orderdate + 30..90, receiptdate =
 *   shipdate + 1..30, returnflag R or A when receiptdate <= 1995-06-17 else N, linestatus O when
 *   shipdate > 1995-06-17 else F, shipinstruct of 4, shipmode of 7.
 * - comments: random substrings of a text pool generated from the spec's grammar (sentences of
 *   noun/verb/prepositional phrases over the weighted word lists), as dbgen does, so patterns
 *   like Q13's `%special%requests%` occur at dbgen's rates.
 *
 * Decimals are kept as integer cents (`*Cents` fields) so both databases load exact values;
 * dates are ISO `YYYY-MM-DD` strings.
 */
import { mulberry32 } from '../org/data.js'

interface Rng {
  /** A uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number
  pick<A>(xs: readonly A[]): A
  /** A token of a weighted distribution. */
  weighted(d: Dist): string
}

function rng(seed: number): Rng {
  const r = mulberry32(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
  return {
    int,
    pick: (xs) => xs[Math.floor(r() * xs.length)] as (typeof xs)[number],
    weighted(d) {
      const x = r() * d.total
      let i = 0
      while (i < d.cum.length - 1 && (d.cum[i] as number) <= x) i++
      return d.tokens[i] as string
    },
  }
}

interface Dist {
  readonly tokens: readonly string[]
  readonly cum: readonly number[]
  readonly total: number
}

/** A weighted distribution from `token|weight` pairs (dists.dss's format). */
function dist(spec: string): Dist {
  const tokens: string[] = []
  const cum: number[] = []
  let total = 0
  for (const entry of spec.split(',')) {
    const [tok, w] = entry.split('|') as [string, string]
    total += Number(w)
    tokens.push(tok.trim())
    cum.push(total)
  }
  return { tokens, cum, total }
}

// ---------------------------------------------------------------- dists.dss

export const REGIONS = ['AFRICA', 'AMERICA', 'ASIA', 'EUROPE', 'MIDDLE EAST'] as const
/** [name, regionkey], nationkey = index. */
export const NATIONS: readonly (readonly [string, number])[] = [
  ['ALGERIA', 0], ['ARGENTINA', 1], ['BRAZIL', 1], ['CANADA', 1], ['EGYPT', 4], ['ETHIOPIA', 0], ['FRANCE', 3],
  ['GERMANY', 3], ['INDIA', 2], ['INDONESIA', 2], ['IRAN', 4], ['IRAQ', 4], ['JAPAN', 2], ['JORDAN', 4], ['KENYA', 0],
  ['MOROCCO', 0], ['MOZAMBIQUE', 0], ['PERU', 1], ['CHINA', 2], ['ROMANIA', 3], ['SAUDI ARABIA', 4], ['VIETNAM', 2],
  ['RUSSIA', 3], ['UNITED KINGDOM', 3], ['UNITED STATES', 1],
]
const SEGMENTS = ['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY'] as const
const PRIORITIES = ['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'] as const
const INSTRUCT = ['DELIVER IN PERSON', 'COLLECT COD', 'TAKE BACK RETURN', 'NONE'] as const
const SHIPMODES = ['REG AIR', 'AIR', 'RAIL', 'TRUCK', 'MAIL', 'FOB', 'SHIP'] as const
const TYPE_S1 = ['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'] as const
const TYPE_S2 = ['ANODIZED', 'BURNISHED', 'PLATED', 'POLISHED', 'BRUSHED'] as const
const TYPE_S3 = ['TIN', 'NICKEL', 'BRASS', 'STEEL', 'COPPER'] as const
const CONT_S1 = ['SM', 'LG', 'MED', 'JUMBO', 'WRAP'] as const
const CONT_S2 = ['CASE', 'BOX', 'BAG', 'JAR', 'PACK', 'PKG', 'CAN', 'DRUM'] as const
const COLORS = (
  'almond antique aquamarine azure beige bisque black blanched blue blush brown burlywood burnished chartreuse chiffon ' +
  'chocolate coral cornflower cornsilk cream cyan dark deep dim dodger drab firebrick floral forest frosted gainsboro ' +
  'ghost goldenrod green grey honeydew hot indian ivory khaki lace lavender lawn lemon light lime linen magenta maroon ' +
  'medium metallic midnight mint misty moccasin navajo navy olive orange orchid pale papaya peach peru pink plum powder ' +
  'puff purple red rose rosy royal saddle salmon sandy seashell sienna sky slate smoke snow spring steel tan thistle ' +
  'tomato turquoise violet wheat white yellow'
).split(' ')

const NOUNS = dist(
  'packages|40,requests|40,accounts|40,deposits|40,foxes|20,ideas|20,theodolites|20,pinto beans|20,instructions|20,' +
    'dependencies|10,excuses|10,platelets|10,asymptotes|10,courts|5,dolphins|5,multipliers|1,sauternes|1,warthogs|1,' +
    'frets|1,dinos|1,attainments|1,somas|1,Tiresias|1,patterns|1,forges|1,braids|1,frays|1,warhorses|1,dugouts|1,' +
    'notornis|1,epitaphs|1,pearls|1,tithes|1,waters|1,orbits|1,gifts|1,sheaves|1,depths|1,sentiments|1,decoys|1,' +
    'realms|1,pains|1,grouches|1,escapades|1,hockey players|1',
)
const VERBS = dist(
  'sleep|20,wake|20,are|20,cajole|20,haggle|20,nag|10,use|10,boost|10,affix|5,detect|5,integrate|5,maintain|1,nod|1,' +
    'was|1,lose|1,sublate|1,solve|1,thrash|1,promise|1,engage|1,hinder|1,print|1,x-ray|1,breach|1,eat|1,grow|1,' +
    'impress|1,mold|1,poach|1,serve|1,run|1,dazzle|1,snooze|1,doze|1,unwind|1,kindle|1,play|1,hang|1,believe|1,doubt|1',
)
const ADVERBS = dist(
  'sometimes|1,always|1,never|1,furiously|50,slyly|50,carefully|50,blithely|40,quickly|30,fluffily|20,slowly|1,' +
    'quietly|1,ruthlessly|1,thinly|1,closely|1,doggedly|1,daringly|1,bravely|1,stealthily|1,permanently|1,' +
    'enticingly|1,idly|1,busily|1,regularly|1,finally|1,ironically|1,evenly|1,boldly|1,silently|1',
)
const PREPOSITIONS = dist(
  'about|50,above|50,according to|50,across|50,after|50,against|40,along|40,alongside of|30,among|30,around|20,' +
    'at|10,atop|1,before|1,behind|1,beneath|1,beside|1,besides|1,between|1,beyond|1,by|1,despite|1,during|1,' +
    'except|1,for|1,from|1,in place of|1,inside|1,instead of|1,into|1,near|1,of|1,on|1,outside|1,over|1,past|1,' +
    'since|1,through|1,throughout|1,to|1,toward|1,under|1,until|1,up|1,upon|1,whithout|1,with|1,within|1',
)
const AUXILIARIES = dist(
  'do|1,may|1,might|1,shall|1,will|1,would|1,can|1,could|1,should|1,ought to|1,must|1,will have to|1,' +
    'shall have to|1,could have to|1,should have to|1,must have to|1,need to|1,try to|1',
)
const TERMINATORS = dist('.|50,;|1,:|1,?|1,!|1,--|1')
const ADJECTIVES = dist(
  'special|20,pending|20,unusual|20,express|20,furious|1,sly|1,careful|1,blithe|1,quick|1,fluffy|1,slow|1,quiet|1,' +
    'ruthless|1,thin|1,close|1,dogged|1,daring|1,brave|1,stealthy|1,permanent|1,enticing|1,idle|1,busy|1,' +
    'regular|50,final|40,ironic|40,even|30,bold|20,silent|10',
)
const GRAMMAR = dist('N V T|3,N V P T|3,N V N T|3,N P V N T|1,N P V P T|1')
const NP = dist('N|10,J N|20,J^ J N|10,D J N|50')
const VP = dist('V|30,X V|1,V D|40,X V D|1')

/** The spec's text grammar (4.2.2.10), as dbgen's text.c builds its text pool. */
function sentence(r: Rng): string {
  const words: string[] = []
  const np = () => {
    for (const sym of r.weighted(NP).split(' ')) {
      if (sym === 'N') words.push(r.weighted(NOUNS))
      else if (sym === 'J') words.push(r.weighted(ADJECTIVES))
      else if (sym === 'J^') words.push(`${r.weighted(ADJECTIVES)},`)
      else if (sym === 'D') words.push(r.weighted(ADVERBS))
    }
  }
  const vp = () => {
    for (const sym of r.weighted(VP).split(' ')) {
      if (sym === 'V') words.push(r.weighted(VERBS))
      else if (sym === 'X') words.push(r.weighted(AUXILIARIES))
      else if (sym === 'D') words.push(r.weighted(ADVERBS))
    }
  }
  let out = ''
  for (const sym of r.weighted(GRAMMAR).split(' ')) {
    if (sym === 'N') np()
    else if (sym === 'V') vp()
    else if (sym === 'P') {
      words.push(r.weighted(PREPOSITIONS), 'the')
      np()
    } else if (sym === 'T') {
      out = `${words.join(' ')}${r.weighted(TERMINATORS)}`
    }
  }
  return out
}

/** A text pool of about `size` characters (dbgen uses 300 MB; comments are substrings of it). */
function textPool(r: Rng, size: number): string {
  const parts: string[] = []
  let n = 0
  while (n < size) {
    const s = sentence(r)
    parts.push(s)
    n += s.length + 1
  }
  return parts.join(' ')
}

// ---------------------------------------------------------------- dates

const DAY_MS = 86_400_000
const epochDay = (iso: string): number => Date.parse(`${iso}T00:00:00Z`) / DAY_MS
const isoOf = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10)
const START_DAY = epochDay('1992-01-01')
const END_DAY = epochDay('1998-12-31')
/** dbgen's CURRENTDATE: the line status / return flag cut-off. */
const CURRENT_DAY = epochDay('1995-06-17')

// ---------------------------------------------------------------- rows

export interface Region { r_regionkey: number; r_name: string; r_comment: string }
export interface Nation { n_nationkey: number; n_name: string; n_regionkey: number; n_comment: string }
export interface Supplier { s_suppkey: number; s_name: string; s_address: string; s_nationkey: number; s_phone: string; s_acctbal: number; s_comment: string }
export interface Part {
  p_partkey: number; p_name: string; p_mfgr: string; p_brand: string; p_type: string; p_size: number; p_container: string; p_retailprice: number; p_comment: string
}
export interface PartSupp { ps_partkey: number; ps_suppkey: number; ps_availqty: number; ps_supplycost: number; ps_comment: string }
export interface Customer {
  c_custkey: number; c_name: string; c_address: string; c_nationkey: number; c_phone: string; c_acctbal: number; c_mktsegment: string; c_comment: string
}
export interface Order {
  o_orderkey: number; o_custkey: number; o_orderstatus: string; o_totalprice: number; o_orderdate: string; o_orderpriority: string
  o_clerk: string; o_shippriority: number; o_comment: string
}
export interface LineItem {
  l_orderkey: number; l_partkey: number; l_suppkey: number; l_linenumber: number; l_quantity: number; l_extendedprice: number
  l_discount: number; l_tax: number; l_returnflag: string; l_linestatus: string; l_shipdate: string; l_commitdate: string
  l_receiptdate: string; l_shipinstruct: string; l_shipmode: string; l_comment: string
}

export interface TpchData {
  readonly region: readonly Region[]
  readonly nation: readonly Nation[]
  readonly supplier: readonly Supplier[]
  readonly part: readonly Part[]
  readonly partsupp: readonly PartSupp[]
  readonly customer: readonly Customer[]
  readonly orders: readonly Order[]
  readonly lineitem: readonly LineItem[]
}

/** Column kinds, for DDL and loaders: key/int, decimal (2 places), date, text. */
export type ColKind = 'int' | 'decimal' | 'date' | 'text'

/** Every table's columns in TPC-H order, with kinds, and its primary key. */
export const SCHEMA: Readonly<Record<keyof TpchData, { readonly cols: readonly (readonly [string, ColKind])[]; readonly key: readonly string[] }>> = {
  region: { cols: [['r_regionkey', 'int'], ['r_name', 'text'], ['r_comment', 'text']], key: ['r_regionkey'] },
  nation: { cols: [['n_nationkey', 'int'], ['n_name', 'text'], ['n_regionkey', 'int'], ['n_comment', 'text']], key: ['n_nationkey'] },
  supplier: {
    cols: [['s_suppkey', 'int'], ['s_name', 'text'], ['s_address', 'text'], ['s_nationkey', 'int'], ['s_phone', 'text'], ['s_acctbal', 'decimal'], ['s_comment', 'text']],
    key: ['s_suppkey'],
  },
  part: {
    cols: [
      ['p_partkey', 'int'], ['p_name', 'text'], ['p_mfgr', 'text'], ['p_brand', 'text'], ['p_type', 'text'], ['p_size', 'int'],
      ['p_container', 'text'], ['p_retailprice', 'decimal'], ['p_comment', 'text'],
    ],
    key: ['p_partkey'],
  },
  partsupp: {
    cols: [['ps_partkey', 'int'], ['ps_suppkey', 'int'], ['ps_availqty', 'int'], ['ps_supplycost', 'decimal'], ['ps_comment', 'text']],
    key: ['ps_partkey', 'ps_suppkey'],
  },
  customer: {
    cols: [
      ['c_custkey', 'int'], ['c_name', 'text'], ['c_address', 'text'], ['c_nationkey', 'int'], ['c_phone', 'text'], ['c_acctbal', 'decimal'],
      ['c_mktsegment', 'text'], ['c_comment', 'text'],
    ],
    key: ['c_custkey'],
  },
  orders: {
    cols: [
      ['o_orderkey', 'int'], ['o_custkey', 'int'], ['o_orderstatus', 'text'], ['o_totalprice', 'decimal'], ['o_orderdate', 'date'],
      ['o_orderpriority', 'text'], ['o_clerk', 'text'], ['o_shippriority', 'int'], ['o_comment', 'text'],
    ],
    key: ['o_orderkey'],
  },
  lineitem: {
    cols: [
      ['l_orderkey', 'int'], ['l_partkey', 'int'], ['l_suppkey', 'int'], ['l_linenumber', 'int'], ['l_quantity', 'decimal'],
      ['l_extendedprice', 'decimal'], ['l_discount', 'decimal'], ['l_tax', 'decimal'], ['l_returnflag', 'text'], ['l_linestatus', 'text'],
      ['l_shipdate', 'date'], ['l_commitdate', 'date'], ['l_receiptdate', 'date'], ['l_shipinstruct', 'text'], ['l_shipmode', 'text'],
      ['l_comment', 'text'],
    ],
    key: ['l_orderkey', 'l_linenumber'],
  },
}

/** Foreign-key indexes (the spec's foreign keys; partsupp's and lineitem's leading key columns are covered by their primary keys). */
export const FK_INDEXES: readonly (readonly [keyof TpchData, string])[] = [
  ['nation', 'n_regionkey'],
  ['supplier', 's_nationkey'],
  ['partsupp', 'ps_suppkey'],
  ['customer', 'c_nationkey'],
  ['orders', 'o_custkey'],
  ['lineitem', 'l_partkey'],
  ['lineitem', 'l_suppkey'],
  ['lineitem', 'l_partkey, l_suppkey'],
]

export const TABLES = Object.keys(SCHEMA) as (keyof TpchData)[]

const pad9 = (n: number) => String(n).padStart(9, '0')
const cents = (c: number) => c / 100

/** Generate TPC-H data at scale factor `sf`, deterministically from `seed`. */
export function generate(sf = 0.01, seed = 20260101): TpchData {
  const r = rng(seed)
  const pool = textPool(rng(seed + 1), 1 << 20)
  const text = (lo: number, hi: number): string => {
    const len = r.int(lo, hi)
    const at = r.int(0, pool.length - len - 1)
    return pool.slice(at, at + len)
  }
  const vstring = (lo: number, hi: number): string => {
    const chars = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,. '
    const len = r.int(lo, hi)
    let s = ''
    for (let i = 0; i < len; i++) s += chars[r.int(0, chars.length - 1)]
    return s
  }
  const phone = (nation: number): string => `${nation + 10}-${r.int(100, 999)}-${r.int(100, 999)}-${r.int(1000, 9999)}`

  const region: Region[] = REGIONS.map((name, i) => ({ r_regionkey: i, r_name: name, r_comment: text(31, 115) }))
  const nation: Nation[] = NATIONS.map(([name, reg], i) => ({ n_nationkey: i, n_name: name, n_regionkey: reg, n_comment: text(31, 114) }))

  const nSupp = Math.round(sf * 10_000)
  const supplier: Supplier[] = []
  for (let k = 1; k <= nSupp; k++) {
    const nk = r.int(0, 24)
    supplier.push({
      s_suppkey: k, s_name: `Supplier#${pad9(k)}`, s_address: vstring(10, 40), s_nationkey: nk, s_phone: phone(nk),
      s_acctbal: cents(r.int(-99_999, 999_999)), s_comment: text(25, 100),
    })
  }
  // SF * 5 complaints and SF * 5 recommendations (at least one of each), at random positions.
  const bbb = Math.max(1, Math.round(sf * 5))
  const chosen = new Set<number>()
  for (const word of ['Complaints', 'Recommends']) {
    for (let i = 0; i < bbb; i++) {
      let k: number
      do k = r.int(1, nSupp)
      while (chosen.has(k))
      chosen.add(k)
      const s = supplier[k - 1] as Supplier
      const c = s.s_comment
      // dbgen: "Customer " at a random position, then the word after a few more characters
      const gap = r.int(0, 10)
      const at = r.int(0, Math.max(0, c.length - 19 - gap))
      const body = `${c.slice(0, at)}Customer ${c.slice(at, at + gap)}${word}${c.slice(at + gap)}`
      s.s_comment = body.slice(0, Math.max(c.length, at + 9 + gap + word.length))
    }
  }

  const nPart = Math.round(sf * 200_000)
  const part: Part[] = []
  for (let k = 1; k <= nPart; k++) {
    const colors = [...COLORS]
    const name: string[] = []
    for (let i = 0; i < 5; i++) name.push(colors.splice(r.int(0, colors.length - 1), 1)[0] as string)
    const m = r.int(1, 5)
    part.push({
      p_partkey: k, p_name: name.join(' '), p_mfgr: `Manufacturer#${m}`, p_brand: `Brand#${m}${r.int(1, 5)}`,
      p_type: `${r.pick(TYPE_S1)} ${r.pick(TYPE_S2)} ${r.pick(TYPE_S3)}`, p_size: r.int(1, 50),
      p_container: `${r.pick(CONT_S1)} ${r.pick(CONT_S2)}`,
      p_retailprice: cents(90_000 + (Math.floor(k / 10) % 20_001) + 100 * (k % 1000)), p_comment: text(5, 22),
    })
  }
  const retailCents = (k: number) => 90_000 + (Math.floor(k / 10) % 20_001) + 100 * (k % 1000)
  const suppOf = (pk: number, i: number) => ((pk + i * (Math.floor(nSupp / 4) + Math.floor((pk - 1) / nSupp))) % nSupp) + 1

  const partsupp: PartSupp[] = []
  for (let k = 1; k <= nPart; k++) {
    for (let i = 0; i < 4; i++) {
      partsupp.push({ ps_partkey: k, ps_suppkey: suppOf(k, i), ps_availqty: r.int(1, 9999), ps_supplycost: cents(r.int(100, 100_000)), ps_comment: text(49, 198) })
    }
  }

  const nCust = Math.round(sf * 150_000)
  const customer: Customer[] = []
  for (let k = 1; k <= nCust; k++) {
    const nk = r.int(0, 24)
    customer.push({
      c_custkey: k, c_name: `Customer#${pad9(k)}`, c_address: vstring(10, 40), c_nationkey: nk, c_phone: phone(nk),
      c_acctbal: cents(r.int(-99_999, 999_999)), c_mktsegment: r.pick(SEGMENTS), c_comment: text(29, 116),
    })
  }

  const nOrders = Math.round(sf * 1_500_000)
  const nClerk = Math.max(1, Math.round(sf * 1000))
  const orders: Order[] = []
  const lineitem: LineItem[] = []
  for (let i = 0; i < nOrders; i++) {
    const ok = Math.floor(i / 8) * 32 + (i % 8) + 1
    let ck: number
    do ck = r.int(1, nCust)
    while (ck % 3 === 0)
    const od = r.int(START_DAY, END_DAY - 151)
    const nLines = r.int(1, 7)
    let total = 0
    let nF = 0
    for (let ln = 1; ln <= nLines; ln++) {
      const pk = r.int(1, nPart)
      const sk = suppOf(pk, r.int(0, 3))
      const qty = r.int(1, 50)
      const ep = qty * retailCents(pk)
      const disc = r.int(0, 10)
      const tax = r.int(0, 8)
      const ship = od + r.int(1, 121)
      const commit = od + r.int(30, 90)
      const receipt = ship + r.int(1, 30)
      const status = ship > CURRENT_DAY ? 'O' : 'F'
      if (status === 'F') nF++
      total += Math.trunc((Math.trunc((ep * (100 - disc)) / 100) * (100 + tax)) / 100)
      lineitem.push({
        l_orderkey: ok, l_partkey: pk, l_suppkey: sk, l_linenumber: ln, l_quantity: qty, l_extendedprice: cents(ep),
        l_discount: cents(disc), l_tax: cents(tax), l_returnflag: receipt <= CURRENT_DAY ? (r.int(0, 1) === 0 ? 'R' : 'A') : 'N',
        l_linestatus: status, l_shipdate: isoOf(ship), l_commitdate: isoOf(commit), l_receiptdate: isoOf(receipt),
        l_shipinstruct: r.pick(INSTRUCT), l_shipmode: r.pick(SHIPMODES), l_comment: text(10, 43),
      })
    }
    orders.push({
      o_orderkey: ok, o_custkey: ck, o_orderstatus: nF === nLines ? 'F' : nF === 0 ? 'O' : 'P', o_totalprice: cents(total),
      o_orderdate: isoOf(od), o_orderpriority: r.pick(PRIORITIES), o_clerk: `Clerk#${pad9(r.int(1, nClerk))}`, o_shippriority: 0,
      o_comment: text(19, 78),
    })
  }
  return { region, nation, supplier, part, partsupp, customer, orders, lineitem }
}
