/**
 * A point where a derivation's function can be held: after `hold()`, the next call to `pass()`
 * waits (and `held` resolves) until `release()`.
 */
export function holdable() {
  let armed = false
  let release!: () => void
  let reached!: () => void
  const open = new Promise<void>((r) => (release = r))
  const held = new Promise<void>((r) => (reached = r))
  return {
    hold: () => void (armed = true),
    held,
    release,
    async pass(): Promise<void> {
      if (!armed) return
      armed = false
      reached()
      await open
    },
  }
}
