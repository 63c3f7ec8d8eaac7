/** How capabilities are written on the command line (`contacts allow/deny`), for help texts and errors. */
export const CAPABILITY_SYNTAX = 'chat, pipe, file, view, media, forward=HOST:PORT[,HOST:LOW-HIGH...], file-max=SIZE (e.g. 50M)';
