/* policy_load.c: (being written) */
int main(void)
{
    return 0;
}
