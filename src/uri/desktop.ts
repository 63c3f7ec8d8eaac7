/**
 * The freedesktop.org handler for `peerdial:` links: a desktop entry with
 * `MimeType=x-scheme-handler/peerdial;` whose Exec line runs
 * `peerdial open %u` in a terminal. Pure: returns text.
 */
export const DESKTOP_FILE = 'peerdial-uri.desktop';
export const SCHEME_MIME = 'x-scheme-handler/peerdial';

const RESERVED = /[\s"'\\><~|&;$*?#()`]/;

/**
 * One argument of an Exec line (Desktop Entry Spec, "The Exec key"): quoted
 * when it holds a reserved character, `"` `` ` `` `$` `\` backslash-escaped
 * inside the quotes, then every backslash doubled again (the string-value
 * escape), and `%` written `%%` (field codes).
 */
export function desktopExecArg(arg: string): string {
  if (/[\u0000-\u001f\u007f]/.test(arg)) throw new Error(`a desktop Exec argument cannot hold a control character: ${JSON.stringify(arg)}`);
  let v = arg.replace(/%/g, '%%');
  if (RESERVED.test(v) || v === '') v = `"${v.replace(/([\\"`$])/g, '\\$1')}"`;
  return v.replace(/\\/g, '\\\\');
}

export function desktopEntry(o: { argv: string[] }): string {
  const exec = [...o.argv.map(desktopExecArg), '%u'].join(' ');
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.0',
    'Name=peerdial',
    'GenericName=Direct call',
    'Comment=Place a direct call from a peerdial: link',
    `Exec=${exec}`,
    'Terminal=true',
    'NoDisplay=true',
    `MimeType=${SCHEME_MIME};`,
    'Categories=Network;Telephony;',
    '',
  ].join('\n');
}
