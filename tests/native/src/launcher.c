/* Stands in for the console launchers pip, setuptools and distlib ship in their pure wheels
 * (cli-64.exe, t64.exe, ...): a Windows program, run as a process of its own, never loaded
 * into Python. No CRT, no imports. */
int launcher_main(void)
{
    return 0;
}
