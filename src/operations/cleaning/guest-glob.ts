/** Shell-style globs for one path component: `*`, `?` and `[…]` (with `!` or `^` negation). */
export function hasWildcard(component: string): boolean {
  return /[*?[]/.test(component);
}

export function globToRegExp(component: string): RegExp {
  let re = "";
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = component.indexOf("]", i + 2);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = component.slice(i + 1, end);
      if (body.startsWith("!") || body.startsWith("^")) body = "^" + body.slice(1);
      re += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s");
}
